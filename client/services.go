package client

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/drover-sh/drover/client/checks"
	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

// serviceSync keeps the servers' registry in step with the health of this
// node's service instances. An instance exists while its allocation runs
// (desired run, client status running); it is registered while healthy:
// at once when its service has no checks, once every check passed
// otherwise, and deregistered on the first failed check run or when the
// allocation stops. Changes are batched like status updates: the first
// change opens a window (UpdateWindow) and everything changed by its end
// goes in one Service.Upsert and one Service.Delete.
type serviceSync struct {
	c    *Client
	set  *checks.Set
	kick chan struct{}

	// opMu orders the changes of instances with the Set calls that
	// follow them, so a watch never outlives its instance. The Set's
	// callback takes mu only, never opMu.
	opMu      sync.Mutex
	mu        sync.Mutex
	instances map[string]*serviceInstance // by registration ID
	byAlloc   map[string][]string
	dirty     map[string]struct{}
	// registered is what the servers are believed to hold for this node;
	// only those IDs are ever sent in a delete.
	registered map[string]bool
}

type serviceInstance struct {
	reg     *structs.ServiceRegistration
	checks  []*checks.Check
	healthy bool
	// kick wakes the allocation's deployment health watcher.
	kick func()
}

func newServiceSync(c *Client) *serviceSync {
	s := &serviceSync{
		c:          c,
		kick:       make(chan struct{}, 1),
		instances:  make(map[string]*serviceInstance),
		byAlloc:    make(map[string][]string),
		dirty:      make(map[string]struct{}),
		registered: make(map[string]bool),
	}
	s.set = checks.NewSet(c.logger, s.healthChanged)
	return s
}

// healthChanged is the check Set's report (called with the Set's lock
// held, so it only records).
func (s *serviceSync) healthChanged(id string, h checks.Health, output string) {
	s.mu.Lock()
	inst := s.instances[id]
	if inst != nil {
		inst.healthy = h == checks.Healthy
		s.dirty[id] = struct{}{}
	}
	s.mu.Unlock()
	if inst != nil {
		s.poke()
		inst.kick()
	}
}

// allocHealthy reports whether every service of the allocation's group
// has its instance and every instance passes its checks.
func (s *serviceSync) allocHealthy(allocID string, services int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.byAlloc[allocID]
	if len(ids) < services {
		return false
	}
	for _, id := range ids {
		if inst := s.instances[id]; inst == nil || !inst.healthy {
			return false
		}
	}
	return true
}

func (s *serviceSync) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// allocChanged brings the allocation's instances in line with its state:
// built (and their checks started) while it runs, removed otherwise.
func (s *serviceSync) allocChanged(ar *allocRunner) {
	a := ar.allocation()
	status, _, _ := ar.clientStatus()
	var want []*serviceInstance
	if a.DesiredStatus == structs.AllocDesiredRun && status == structs.AllocClientRunning {
		want = s.build(ar)
	}
	var watch []*serviceInstance
	var unwatch []string
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	ids := make([]string, 0, len(want))
	for _, w := range want {
		ids = append(ids, w.reg.ID)
		old := s.instances[w.reg.ID]
		if old != nil && sameInstance(old, w) {
			continue
		}
		// New, or changed: with the same checks the Set keeps the
		// instance's health (and will not report it again); new checks
		// start over and report once they pass.
		w.healthy = len(w.checks) == 0 || (old != nil && old.healthy && sameChecks(old, w))
		s.instances[w.reg.ID] = w
		s.dirty[w.reg.ID] = struct{}{}
		watch = append(watch, w)
	}
	for _, id := range s.byAlloc[a.ID] {
		if !slices.Contains(ids, id) {
			delete(s.instances, id)
			s.dirty[id] = struct{}{}
			unwatch = append(unwatch, id)
		}
	}
	if len(ids) == 0 {
		delete(s.byAlloc, a.ID)
	} else {
		s.byAlloc[a.ID] = ids
	}
	s.mu.Unlock()
	// The Set calls back with its own lock held: never call it with ours.
	for _, id := range unwatch {
		s.set.Unwatch(id)
	}
	for _, w := range watch {
		s.set.Watch(w.reg.ID, w.checks)
	}
	if len(watch)+len(unwatch) > 0 {
		s.poke()
	}
}

func sameInstance(a, b *serviceInstance) bool {
	x, y := a.reg, b.reg
	return x.ID == y.ID && x.ServiceName == y.ServiceName && x.Namespace == y.Namespace &&
		x.JobID == y.JobID && x.AllocID == y.AllocID && x.Address == y.Address && x.Port == y.Port &&
		x.HostAddress == y.HostAddress && x.HostPort == y.HostPort && slices.Equal(x.Tags, y.Tags) &&
		sameChecks(a, b)
}

func sameChecks(a, b *serviceInstance) bool {
	return slices.EqualFunc(a.checks, b.checks, func(x, y *checks.Check) bool { return x.Same(y) })
}

// build resolves the group's services of a running allocation to
// registrations and checks. A service whose port cannot be resolved is
// left out, with a warning: it has no address to offer.
func (s *serviceSync) build(ar *allocRunner) []*serviceInstance {
	a := ar.allocation()
	g := ar.group()
	if g == nil || len(g.Services) == 0 {
		return nil
	}
	ip := ""
	ar.mu.RLock()
	if ar.network != nil && wantsNetwork(g) {
		ip = ar.network.Data["ip"]
	}
	ar.mu.RUnlock()
	nodeAddr := s.c.serviceAddr()
	out := make([]*serviceInstance, 0, len(g.Services))
	for _, svc := range g.Services {
		ep, ok := resolvePort(a, svc.Port, ip, nodeAddr)
		if !ok {
			ar.logger.Warn("service has no port to register", "service", svc.Name, "port", svc.Port)
			continue
		}
		inst := &serviceInstance{kick: ar.kickHealth, reg: &structs.ServiceRegistration{
			ID:          structs.ServiceRegistrationID(a.ID, svc.Name, svc.Port),
			ServiceName: svc.Name,
			Namespace:   a.Namespace,
			NodeID:      s.c.cfg.NodeID,
			Datacenter:  s.c.cfg.Datacenter,
			JobID:       a.JobID,
			AllocID:     a.ID,
			Tags:        slices.Clone(svc.Tags),
			Address:     ep.addr,
			Port:        ep.port,
			HostAddress: ep.hostAddr,
			HostPort:    ep.hostPort,
		}}
		for i, c := range svc.Checks {
			if ch := s.check(ar, g, svc, i, c, ip, nodeAddr); ch != nil {
				inst.checks = append(inst.checks, ch)
			}
		}
		if len(inst.checks) < len(svc.Checks) {
			continue // a check that cannot run never passes
		}
		out = append(out, inst)
	}
	return out
}

func (s *serviceSync) check(ar *allocRunner, g *structs.TaskGroup, svc *structs.Service, i int, c *structs.Check, ip, nodeAddr string) *checks.Check {
	a := ar.allocation()
	name := c.Name
	if name == "" {
		name = fmt.Sprintf("service %s check %d", svc.Name, i)
	}
	ch := &checks.Check{Name: name, Type: c.Type, Path: c.Path, Interval: c.Interval.D(), Timeout: c.Timeout.D()}
	switch c.Type {
	case structs.CheckHTTP, structs.CheckTCP:
		label := c.Port
		if label == "" {
			label = svc.Port
		}
		ep, ok := resolvePort(a, label, ip, nodeAddr)
		if !ok {
			ar.logger.Warn("check has no port to probe", "service", svc.Name, "check", name, "port", label)
			return nil
		}
		ch.Addr = net.JoinHostPort(ep.addr, strconv.Itoa(ep.port))
	case structs.CheckScript:
		task := c.Task
		if task == "" && len(g.Tasks) == 1 {
			task = g.Tasks[0].Name
		}
		id := driver.TaskID(a.ID, task)
		cmd := append([]string{c.Command}, c.Args...)
		drv := s.c.driver
		ch.Exec = func(ctx context.Context) (int, error) {
			return drv.ExecTask(ctx, id, &driver.ExecOptions{Command: cmd, Stdout: io.Discard, Stderr: io.Discard})
		}
	default:
		return nil
	}
	return ch
}

// endpoint is where an instance is reached.
type endpoint struct {
	addr     string
	port     int
	hostAddr string
	hostPort int
}

// resolvePort turns a service's port (a label of the group's network, or
// a number) into the instance's endpoint. With an allocation IP (bridge
// mode) the instance is reached at that IP and the port inside its
// network, and through the node at the mapped host port; otherwise at the
// node's address and the host port.
func resolvePort(a *structs.Allocation, label, ip, nodeAddr string) (endpoint, bool) {
	if label == "" {
		return endpoint{}, false
	}
	host, to := 0, 0
	if a.Resources != nil {
		for _, p := range a.Resources.Ports {
			if p.Label == label {
				host, to = p.Value, p.To
				break
			}
		}
	}
	if host == 0 {
		n, err := strconv.Atoi(label)
		if err != nil || n < 1 || n > 65535 {
			return endpoint{}, false
		}
		// A literal port is the port the task listens on, wherever
		// that is; nothing maps it through the node in bridge mode.
		if ip != "" {
			return endpoint{addr: ip, port: n}, true
		}
		return endpoint{addr: nodeAddr, port: n, hostAddr: nodeAddr, hostPort: n}, true
	}
	if to == 0 {
		to = host
	}
	if ip != "" {
		return endpoint{addr: ip, port: to, hostAddr: nodeAddr, hostPort: host}, true
	}
	return endpoint{addr: nodeAddr, port: host, hostAddr: nodeAddr, hostPort: host}, true
}

// removeAlloc drops every instance of an allocation (it is being
// destroyed).
func (s *serviceSync) removeAlloc(allocID string) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.mu.Lock()
	ids := s.byAlloc[allocID]
	delete(s.byAlloc, allocID)
	for _, id := range ids {
		delete(s.instances, id)
		s.dirty[id] = struct{}{}
	}
	s.mu.Unlock()
	for _, id := range ids {
		s.set.Unwatch(id)
	}
	if len(ids) > 0 {
		s.poke()
	}
}

// run sends the batched changes until ctx ends. It starts with a re-sync
// once the node is registered: whatever the servers hold for this node
// that no allocation here runs any more (the agent was down while it
// stopped) is deleted.
func (s *serviceSync) run(ctx context.Context) {
	defer s.set.Close()
	select {
	case <-ctx.Done():
		return
	case <-s.c.Registered():
	}
	s.resync()
	retry := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		if !s.c.sleep(s.c.cfg.UpdateWindow) {
			return
		}
		err := s.flush()
		if err == nil {
			retry = 0
			continue
		}
		if err == errShutdown {
			return
		}
		retry = backoff(retry, 250*time.Millisecond, 5*time.Second)
		s.c.logger.Warn("sending service registrations failed; retrying", "retry_in", retry, "error", err)
		if !s.c.sleep(retry) {
			return
		}
		s.poke()
	}
}

// resync reads what the servers hold for this node and queues the
// deletion of every instance no allocation here declares any more (the
// agent was down while it stopped, or the job changed). The others are
// remembered as registered, so a later failed check removes them; their
// instances may not be built yet (a restored allocation still
// reattaching), which is why declared, not built, is what counts.
func (s *serviceSync) resync() {
	var resp structs.ServiceGetResponse
	for {
		err := s.c.rpc("Service.NodeServices", &structs.NodeServicesRequest{QueryOptions: structs.QueryOptions{AllowStale: true}}, &resp)
		if err == nil {
			break
		}
		if err == errShutdown || !s.c.sleep(time.Second) {
			return
		}
		s.c.logger.Warn("reading this node's service registrations failed; retrying", "error", err)
	}
	stale := 0
	for _, reg := range resp.Services {
		if reg.NodeID != s.c.cfg.NodeID {
			continue
		}
		declared := false
		if ar, err := s.c.getAlloc(reg.AllocID); err == nil {
			a := ar.allocation()
			if g := ar.group(); g != nil && a.DesiredStatus == structs.AllocDesiredRun {
				for _, svc := range g.Services {
					declared = declared || structs.ServiceRegistrationID(a.ID, svc.Name, svc.Port) == reg.ID
				}
			}
		}
		s.mu.Lock()
		s.registered[reg.ID] = true
		if !declared && s.instances[reg.ID] == nil {
			s.dirty[reg.ID] = struct{}{}
			stale++
		}
		s.mu.Unlock()
	}
	if stale > 0 {
		s.c.logger.Info("removing service registrations no allocation on this node declares", "count", stale)
		s.poke()
	}
}

// flush sends what changed since the last flush. What fails is queued
// again; an upsert the servers refuse as invalid (its allocation was
// garbage collected meanwhile) is dropped.
func (s *serviceSync) flush() error {
	s.mu.Lock()
	var upserts []*structs.ServiceRegistration
	var deletes []string
	for id := range s.dirty {
		if inst := s.instances[id]; inst != nil && inst.healthy {
			upserts = append(upserts, inst.reg.Copy())
		} else if s.registered[id] {
			deletes = append(deletes, id)
		}
	}
	s.dirty = make(map[string]struct{})
	s.mu.Unlock()
	slices.SortFunc(upserts, func(a, b *structs.ServiceRegistration) int { return strings.Compare(a.ID, b.ID) })
	slices.Sort(deletes)

	var firstErr error
	requeue := func(ids ...string) {
		s.mu.Lock()
		for _, id := range ids {
			s.dirty[id] = struct{}{}
		}
		s.mu.Unlock()
	}
	if len(deletes) > 0 {
		var resp structs.GenericResponse
		err := s.c.rpc("Service.Delete", &structs.ServiceRegistrationDeleteRequest{IDs: deletes, NodeID: s.c.cfg.NodeID}, &resp)
		if err != nil {
			requeue(deletes...)
			firstErr = err
		} else {
			s.mu.Lock()
			for _, id := range deletes {
				delete(s.registered, id)
			}
			s.mu.Unlock()
		}
	}
	if len(upserts) > 0 {
		if err := s.upsert(upserts, requeue); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// upsert sends registrations. When the servers refuse the batch as
// invalid (an allocation garbage collected meanwhile), each is sent
// alone so only the refused ones are dropped.
func (s *serviceSync) upsert(regs []*structs.ServiceRegistration, requeue func(...string)) error {
	var resp structs.GenericResponse
	err := s.c.rpc("Service.Upsert", &structs.ServiceRegistrationUpsertRequest{Services: regs}, &resp)
	switch {
	case err == nil:
		s.mu.Lock()
		for _, r := range regs {
			s.registered[r.ID] = true
		}
		s.mu.Unlock()
		return nil
	case structs.CodeOf(err) != structs.ErrInvalid:
		ids := make([]string, len(regs))
		for i, r := range regs {
			ids[i] = r.ID
		}
		requeue(ids...)
		return err
	case len(regs) == 1:
		s.c.logger.Warn("servers refused a service registration", "registration_id", regs[0].ID, "error", err)
		return nil
	}
	var firstErr error
	for _, r := range regs {
		if err := s.upsert([]*structs.ServiceRegistration{r}, requeue); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// serviceAddr is the node address services in the host's network are
// registered at: the configured one, else the agent's HTTP address when
// it names one, else loopback.
func (c *Client) serviceAddr() string {
	if c.cfg.ServiceAddress != "" {
		return c.cfg.ServiceAddress
	}
	if host, _, err := net.SplitHostPort(c.cfg.HTTPAddr); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			return host
		}
	}
	return "127.0.0.1"
}
