// Package containerd is the driver.Driver that runs tasks as containerd
// containers through containerd's Go client, and the managed containerd
// daemon an agent may start for itself.
//
// It owns: pulling and importing images (plain-HTTP and authenticated
// registries, an air-gapped image directory), the OCI spec built from an
// image and a driver.TaskConfig, the container and task lifecycle in
// containerd's order (new container with snapshot and spec, new task, wait,
// start, kill, delete with snapshot cleanup), exit and OOM reporting,
// exec, and reattaching to containers started by an earlier agent.
//
// Task output goes to two regular files written by the containerd shim,
// not to FIFOs read by the agent: a FIFO left unread while the agent is
// down stalls the container once its pipe buffer fills, while files keep
// being written.
package containerd
