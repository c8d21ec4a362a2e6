package cni

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/netns"
	cnins "github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

// These tests run the real plugins as root: they create a bridge, network
// namespaces and iptables rules of their own (a per-test bridge name and
// subnet, so they do not collide with a dev agent), and remove them.

func requireCNI(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root (CNI plugins, netns, iptables): run the tests as root, as CI and scripts/install-deps.sh do")
	}
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if _, err := os.Stat(filepath.Join(DefaultPluginDir, p)); err != nil {
			t.Fatalf("CNI plugin %s not installed in %s: run scripts/install-deps.sh (containernetworking-plugins)", p, DefaultPluginDir)
		}
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatal("iptables not installed: run scripts/install-deps.sh")
	}
}

// testNetwork returns a Network on its own bridge and /24, removed (bridge
// included) at the end of the test.
func testNetwork(t *testing.T) *Network {
	t.Helper()
	requireCNI(t)
	name := fmt.Sprintf("drt%04x", rand.IntN(1<<16))
	subnet := fmt.Sprintf("172.27.%d.0/24", rand.IntN(256))
	dir := t.TempDir()
	n, err := New(Config{BridgeName: name, Subnet: subnet, StateDir: filepath.Join(dir, "network"), ConfDir: filepath.Join(dir, "conf")})
	require.NoError(t, err)
	t.Cleanup(func() {
		// Whatever a failed test left: the sweep with nothing live
		// is what a restarted client would do.
		require.NoError(t, n.Sweep(context.Background(), func(string) bool { return false }))
		exec.Command("ip", "link", "del", name).Run()
	})
	return n
}

func testAlloc(mode string, ports ...*structs.AllocatedPort) *structs.Allocation {
	id := structs.GenerateUUID()
	return &structs.Allocation{
		ID: id, JobID: "web", TaskGroup: "g",
		Job:       &structs.Job{ID: "web", Groups: []*structs.TaskGroup{{Name: "g", Network: &structs.NetworkSpec{Mode: mode}}}},
		Resources: &structs.AllocatedResources{Ports: ports},
	}
}

// freePort returns a host port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	for {
		p := 40000 + rand.IntN(20000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			ln.Close()
			return p
		}
	}
}

// serveIn starts an HTTP server inside the namespace at nsPath that
// answers with body.
func serveIn(t *testing.T, nsPath string, port int, body string) {
	t.Helper()
	var ln net.Listener
	err := netns.LoadNetNS(nsPath).Do(func(cnins.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	})
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	var body string
	require.Eventually(t, func() bool {
		resp, err := c.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == 200
	}, 5*time.Second, 20*time.Millisecond, "GET %s", url)
	return body
}

// requireGone checks that nothing of the allocation is left on the host.
func requireGone(t *testing.T, n *Network, allocID string) {
	t.Helper()
	_, err := os.Stat(n.allocDir(allocID))
	require.True(t, os.IsNotExist(err), "network dir of %s left: %v", allocID, err)
	out, err := exec.Command("ip", "-o", "link", "show", "master", n.BridgeName()).CombinedOutput()
	if err == nil { // no bridge at all is fine too
		require.Empty(t, strings.TrimSpace(string(out)), "veths left on the bridge")
	}
	leases, err := leaseIDs(filepath.Join(n.ipamDir, n.BridgeName()))
	require.NoError(t, err)
	require.NotContains(t, leases, allocID, "lease left")
	for _, table := range []string{"nat", "filter", "mangle"} {
		out, err := exec.Command("iptables-save", "-t", table).CombinedOutput()
		require.NoError(t, err, string(out))
		require.NotContains(t, string(out), allocID, "iptables rule left in %s", table)
	}
	// Per-container chains are named by a hash; none of this network's
	// may be left. Those of other networks (a dev agent's) are not ours.
	_, subnet, err := net.ParseCIDR(n.cfg.Subnet)
	require.NoError(t, err)
	rules, err := listRules(context.Background(), "nat")
	require.NoError(t, err)
	for _, r := range rules {
		if strings.HasPrefix(r.chain, "CNI-DN-") && mentions(r.args, subnet) {
			t.Fatalf("portmap chain left: %s %v", r.chain, r.args)
		}
	}
}

// mentions reports whether an iptables rule's arguments name an address
// of subnet (a source network, a DNAT destination ip:port).
func mentions(args []string, subnet *net.IPNet) bool {
	for _, a := range args {
		host, _, _ := strings.Cut(a, "/")
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if ip := net.ParseIP(host); ip != nil && subnet.Contains(ip) {
			return true
		}
	}
	return false
}

func TestNetwork_BridgeSetupTeardown(t *testing.T) {
	n := testNetwork(t)
	ctx := context.Background()
	httpPort, adminPort := freePort(t), freePort(t)
	a := testAlloc(structs.NetworkModeBridge,
		&structs.AllocatedPort{Label: "http", Value: httpPort, To: 8080},
		&structs.AllocatedPort{Label: "admin", Value: adminPort}) // to defaults to the host port

	st, err := n.Setup(ctx, a)
	require.NoError(t, err)
	ip := net.ParseIP(st.Data[DataIP])
	require.NotNil(t, ip, "ip in %v", st.Data)
	_, subnet, _ := net.ParseCIDR(n.cfg.Subnet)
	require.True(t, subnet.Contains(ip), "%s in %s", ip, subnet)
	require.Equal(t, n.Gateway().String(), st.Data[DataGateway])
	require.Equal(t, "bridge", st.Data[DataMode])
	require.FileExists(t, st.NetNSPath)

	serveIn(t, st.NetNSPath, 8080, "http")
	serveIn(t, st.NetNSPath, adminPort, "admin")
	require.Equal(t, "http", get(t, fmt.Sprintf("http://127.0.0.1:%d/", httpPort)))
	require.Equal(t, "http", get(t, fmt.Sprintf("http://%s:8080/", ip)))
	require.Equal(t, "admin", get(t, fmt.Sprintf("http://127.0.0.1:%d/", adminPort)))
	require.Equal(t, "admin", get(t, fmt.Sprintf("http://%s:%d/", ip, adminPort)))

	require.NoError(t, n.Teardown(ctx, a, st))
	requireGone(t, n, a.ID)
	require.NoError(t, n.Teardown(ctx, a, st), "a second teardown is fine")
	require.NoError(t, n.Teardown(ctx, testAlloc(structs.NetworkModeBridge), nil), "so is one never set up")
}

func TestNetwork_TwoAllocationsGetTheirOwnAddresses(t *testing.T) {
	n := testNetwork(t)
	ctx := context.Background()
	a, b := testAlloc(structs.NetworkModeBridge), testAlloc(structs.NetworkModeBridge)
	sa, err := n.Setup(ctx, a)
	require.NoError(t, err)
	sb, err := n.Setup(ctx, b)
	require.NoError(t, err)
	require.NotEqual(t, sa.Data[DataIP], sb.Data[DataIP])
	serveIn(t, sb.NetNSPath, 8080, "b")
	// One allocation reaches the other through the bridge.
	var body string
	err = netns.LoadNetNS(sa.NetNSPath).Do(func(cnins.NetNS) error {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(fmt.Sprintf("http://%s:8080/", sb.Data[DataIP]))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		bb, err := io.ReadAll(resp.Body)
		body = string(bb)
		return err
	})
	require.NoError(t, err)
	require.Equal(t, "b", body)
	require.NoError(t, n.Teardown(ctx, a, sa))
	require.NoError(t, n.Teardown(ctx, b, sb))
	requireGone(t, n, a.ID)
	requireGone(t, n, b.ID)
}

func TestNetwork_NoneModeHasLoopbackOnly(t *testing.T) {
	n := testNetwork(t)
	ctx := context.Background()
	a := testAlloc(structs.NetworkModeNone)
	st, err := n.Setup(ctx, a)
	require.NoError(t, err)
	require.Empty(t, st.Data[DataIP])
	var links []string
	err = netns.LoadNetNS(st.NetNSPath).Do(func(cnins.NetNS) error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			links = append(links, i.Name)
			if i.Name == "lo" && i.Flags&net.FlagUp == 0 {
				return fmt.Errorf("lo is down")
			}
		}
		return err
	})
	require.NoError(t, err)
	require.Equal(t, []string{"lo"}, links)
	require.NoError(t, n.Teardown(ctx, a, st))
	requireGone(t, n, a.ID)
}

func TestNetwork_UserConfList(t *testing.T) {
	n := testNetwork(t)
	ctx := context.Background()
	require.NoError(t, os.MkdirAll(n.cfg.ConfDir, 0o755))

	// A missing conflist names the file.
	_, err := n.Setup(ctx, testAlloc("cni/absent"))
	require.ErrorContains(t, err, filepath.Join(n.cfg.ConfDir, "absent.conflist"))
	require.True(t, structs.IsNotFound(err))

	// A conflist naming a plugin this node lacks is refused before
	// anything is made.
	missing := `{"cniVersion": "1.0.0", "name": "x", "plugins": [{"type": "bridge"}, {"type": "no-such-plugin"}]}`
	require.NoError(t, os.WriteFile(filepath.Join(n.cfg.ConfDir, "missing.conflist"), []byte(missing), 0o644))
	a := testAlloc("cni/missing")
	_, err = n.Setup(ctx, a)
	require.ErrorContains(t, err, `plugins[1].type: no plugin "no-such-plugin"`)
	requireGone(t, n, a.ID)

	newer := `{"cniVersion": "1.1.0", "name": "x", "plugins": [{"type": "bridge"}]}`
	require.NoError(t, os.WriteFile(filepath.Join(n.cfg.ConfDir, "newer.conflist"), []byte(newer), 0o644))
	_, err = n.Setup(ctx, testAlloc("cni/newer"))
	require.ErrorContains(t, err, `cniVersion "1.1.0" is not supported`)

	// A user network that works: its own bridge and IPAM dir.
	user := filepath.Join(filepath.Dir(n.cfg.ConfDir), "user-ipam")
	br := n.BridgeName() + "u"
	t.Cleanup(func() { exec.Command("ip", "link", "del", br).Run() })
	good := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "%s", "plugins": [
		{"type": "bridge", "bridge": "%s", "isGateway": true, "ipMasq": true,
		 "ipam": {"type": "host-local", "dataDir": "%s", "ranges": [[{"subnet": "172.28.%d.0/24"}]]}},
		{"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}]}`, br, br, user, rand.IntN(256))
	require.NoError(t, os.WriteFile(filepath.Join(n.cfg.ConfDir, "mine.conflist"), []byte(good), 0o644))
	port := freePort(t)
	a = testAlloc("cni/mine", &structs.AllocatedPort{Label: "http", Value: port, To: 8080})
	st, err := n.Setup(ctx, a)
	require.NoError(t, err)
	require.Equal(t, "cni/mine", st.Data[DataMode])
	require.NotEmpty(t, st.Data[DataIP])
	serveIn(t, st.NetNSPath, 8080, "mine")
	require.Equal(t, "mine", get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)))
	require.NoError(t, n.Teardown(ctx, a, st))
	requireGone(t, n, a.ID)
	leases, err := leaseIDs(filepath.Join(user, br))
	require.NoError(t, err)
	require.Empty(t, leases)
}

func TestNetwork_FailedSetupLeavesNothing(t *testing.T) {
	n := testNetwork(t)
	ctx := context.Background()
	require.NoError(t, os.MkdirAll(n.cfg.ConfDir, 0o755))
	// The bridge plugin attaches and takes a lease; tuning then fails
	// on a sysctl that does not exist: the whole attachment is undone.
	bad := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "%s", "plugins": [
		{"type": "bridge", "bridge": "%s", "isGateway": true, "ipMasq": true,
		 "ipam": {"type": "host-local", "dataDir": "%s", "ranges": [[{"subnet": "%s"}]]}},
		{"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
		{"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.no_such_sysctl": "1"}}]}`,
		n.BridgeName(), n.BridgeName(), n.ipamDir, n.cfg.Subnet)
	require.NoError(t, os.WriteFile(filepath.Join(n.cfg.ConfDir, "bad.conflist"), []byte(bad), 0o644))
	a := testAlloc("cni/bad", &structs.AllocatedPort{Label: "http", Value: freePort(t), To: 8080})
	_, err := n.Setup(ctx, a)
	require.Error(t, err)
	requireGone(t, n, a.ID)
}

func TestNetwork_SweepAfterCrash(t *testing.T) {
	n := testNetwork(t)
	ctx := context.Background()
	live := testAlloc(structs.NetworkModeBridge, &structs.AllocatedPort{Label: "http", Value: freePort(t), To: 8080})
	gone := testAlloc(structs.NetworkModeBridge, &structs.AllocatedPort{Label: "http", Value: freePort(t), To: 8080})
	// Lost its record too: a crash right after the namespace was
	// removed by hand, or a state dir half cleaned. The lease and the
	// iptables rules still lead back to it.
	lost := testAlloc(structs.NetworkModeBridge, &structs.AllocatedPort{Label: "http", Value: freePort(t), To: 8080})
	sl, err := n.Setup(ctx, live)
	require.NoError(t, err)
	_, err = n.Setup(ctx, gone)
	require.NoError(t, err)
	_, err = n.Setup(ctx, lost)
	require.NoError(t, err)
	require.NoError(t, n.removeNamespaces(n.allocDir(lost.ID)))
	out, _ := exec.Command("iptables-save", "-t", "nat").CombinedOutput()
	require.Contains(t, string(out), lost.ID, "the rules outlived the namespace")

	// A restarted client knows only the live one.
	require.NoError(t, n.Sweep(ctx, func(id string) bool { return id == live.ID }))
	requireGoneButLive(t, n, gone.ID)
	requireGoneButLive(t, n, lost.ID)
	out, _ = exec.Command("iptables-save", "-t", "nat").CombinedOutput()
	require.Contains(t, string(out), live.ID, "the live allocation keeps its rules")
	require.FileExists(t, sl.NetNSPath)
	serveIn(t, sl.NetNSPath, 8080, "live")
	require.Equal(t, "live", get(t, fmt.Sprintf("http://127.0.0.1:%d/", live.Resources.Ports[0].Value)))

	require.NoError(t, n.Teardown(ctx, live, sl))
	requireGone(t, n, live.ID)
}

// requireGoneButLive is requireGone for a bridge other allocations still
// use: only this allocation's traces are checked.
func requireGoneButLive(t *testing.T, n *Network, allocID string) {
	t.Helper()
	_, err := os.Stat(n.allocDir(allocID))
	require.True(t, os.IsNotExist(err), "network dir of %s left", allocID)
	leases, err := leaseIDs(filepath.Join(n.ipamDir, n.BridgeName()))
	require.NoError(t, err)
	require.NotContains(t, leases, allocID)
	out, err := exec.Command("iptables-save").CombinedOutput()
	require.NoError(t, err)
	require.NotContains(t, string(out), allocID)
}

func TestConfig_Validate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{StateDir: "/x", Subnet: "10.0.0.0/33"}, "subnet:"},
		{Config{StateDir: "/x", Subnet: "nope"}, "subnet:"},
		{Config{StateDir: "/x", Subnet: "10.0.0.1/24"}, "host bits"},
		{Config{StateDir: "/x", Subnet: "10.0.0.0/30"}, "too small"},
		{Config{StateDir: "/x", Subnet: "fd00::/64"}, "not IPv4"},
		{Config{StateDir: "/x", BridgeName: "a-name-longer-than-15"}, "bridge_name:"},
		{Config{StateDir: "relative"}, "state_dir:"},
		{Config{StateDir: "/x", ConfDir: "conf"}, "cni_conf_dir:"},
	} {
		err := tc.cfg.Validate()
		require.ErrorContains(t, err, tc.want, "%+v", tc.cfg)
		require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))
	}
	c := Config{StateDir: "/x"}
	require.NoError(t, c.Validate())
	require.Equal(t, DefaultBridgeName, c.BridgeName)
	gw, err := subnetGateway(c.Subnet)
	require.NoError(t, err)
	require.Equal(t, "172.26.64.1", gw.String())
}

func TestSplitWords(t *testing.T) {
	line := `-A POSTROUTING -s 172.26.64.2/32 -m comment --comment "name: \"drover0\" id: \"abc\"" -j CNI-1234`
	w := splitWords(line)
	require.Equal(t, []string{"-A", "POSTROUTING", "-s", "172.26.64.2/32", "-m", "comment", "--comment",
		`name: "drover0" id: "abc"`, "-j", "CNI-1234"}, w)
	m := commentPattern.FindStringSubmatch(w[7])
	require.Equal(t, []string{"drover0", "abc"}, m[1:])
}

// A subnet that another interface already has an address in is refused,
// naming the interface; the node's own bridge from an earlier run is not
// a conflict.
func TestNetwork_SubnetInUse(t *testing.T) {
	requireCNI(t)
	name := fmt.Sprintf("drd%04x", rand.IntN(1<<16))
	third := rand.IntN(256)
	require.NoError(t, exec.Command("ip", "link", "add", name, "type", "bridge").Run())
	t.Cleanup(func() { exec.Command("ip", "link", "del", name).Run() })
	out, err := exec.Command("ip", "addr", "add", fmt.Sprintf("172.28.%d.1/24", third), "dev", name).CombinedOutput()
	require.NoError(t, err, string(out))

	dir := t.TempDir()
	cfg := func(bridge, subnet string) Config {
		return Config{BridgeName: bridge, Subnet: subnet, StateDir: filepath.Join(dir, "network"), ConfDir: filepath.Join(dir, "conf")}
	}
	for _, subnet := range []string{
		fmt.Sprintf("172.28.%d.0/24", third),     // the same
		fmt.Sprintf("172.28.%d.0/28", third),     // inside it
		fmt.Sprintf("172.28.%d.0/20", third&^15), // around it
	} {
		_, err = New(cfg("drother0", subnet))
		require.Error(t, err, subnet)
		require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))
		require.ErrorContains(t, err, "overlaps 172.28.")
		require.ErrorContains(t, err, "on interface "+name)
	}
	_, err = New(cfg(name, fmt.Sprintf("172.28.%d.0/24", third)))
	require.NoError(t, err, "the node's own bridge")
	_, err = New(cfg("drother0", fmt.Sprintf("172.28.%d.0/24", (third+1)%256)))
	require.NoError(t, err, "a subnet next to it")
}
