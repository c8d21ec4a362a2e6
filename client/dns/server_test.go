package dns

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/structs"
)

func reg(alloc, ns, name, addr string, port int) *structs.ServiceRegistration {
	return &structs.ServiceRegistration{
		ID: structs.ServiceRegistrationID(alloc, name, "http"), ServiceName: name, Namespace: ns,
		AllocID: alloc, Address: addr, Port: port,
	}
}

const (
	alloc1 = "aaaaaaaa-0000-4000-8000-000000000001"
	alloc2 = "bbbbbbbb-0000-4000-8000-000000000002"
	alloc3 = "cccccccc-0000-4000-8000-000000000003"
)

// fixture serves a catalog of web (two instances, one of them sharing
// its address with api), api, and web in namespace prod.
func fixture(t *testing.T) (*Catalog, string) {
	cat := NewCatalog()
	cat.Set(7, []*structs.ServiceRegistration{
		reg(alloc1, "default", "web", "172.26.64.5", 8080),
		reg(alloc2, "default", "web", "10.0.0.9", 25000),
		reg(alloc2, "default", "api", "10.0.0.9", 25001),
		reg(alloc3, "prod", "web", "172.26.64.7", 8080),
		reg("dddddddd-0000-4000-8000-000000000004", "default", "named", "web.example.com", 80),
	})
	s := NewServer(cat, 0, nil)
	t.Cleanup(s.Close)
	require.NoError(t, s.Listen("127.0.0.1:0"))
	addrs := s.Addrs()
	require.Len(t, addrs, 1)
	return cat, addrs[0]
}

func query(t *testing.T, addr, name string, qtype uint16, network string) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	resp, _, err := c.Exchange(m, addr)
	require.NoError(t, err)
	return resp
}

func aRecords(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

func TestServer_A(t *testing.T) {
	_, addr := fixture(t)
	for _, network := range []string{"udp", "tcp"} {
		resp := query(t, addr, "web.service.drover.", dns.TypeA, network)
		require.Equal(t, dns.RcodeSuccess, resp.Rcode)
		require.True(t, resp.Authoritative)
		require.ElementsMatch(t, []string{"172.26.64.5", "10.0.0.9"}, aRecords(resp))
		for _, rr := range resp.Answer {
			require.LessOrEqual(t, rr.Header().Ttl, uint32(5))
		}
	}
	// Case does not matter; the namespace can be named.
	require.ElementsMatch(t, []string{"172.26.64.5", "10.0.0.9"}, aRecords(query(t, addr, "WEB.Service.Drover.", dns.TypeA, "udp")))
	require.Equal(t, []string{"172.26.64.7"}, aRecords(query(t, addr, "web.service.prod.drover.", dns.TypeA, "udp")))
	require.Equal(t, []string{"10.0.0.9"}, aRecords(query(t, addr, "api.service.default.drover.", dns.TypeA, "udp")))
	// The SRV targets resolve.
	require.Equal(t, []string{"10.0.0.9"}, aRecords(query(t, addr, "bbbbbbbb.alloc.drover.", dns.TypeA, "udp")))
}

func TestServer_SRV(t *testing.T) {
	_, addr := fixture(t)
	resp := query(t, addr, "web.service.drover.", dns.TypeSRV, "udp")
	require.Equal(t, dns.RcodeSuccess, resp.Rcode)
	require.Len(t, resp.Answer, 2)
	srv := resp.Answer[0].(*dns.SRV)
	require.Equal(t, uint16(0), srv.Priority)
	require.Equal(t, uint16(1), srv.Weight)
	require.Equal(t, uint16(8080), srv.Port)
	require.Equal(t, "aaaaaaaa.alloc.drover.", srv.Target)
	require.Equal(t, uint16(25000), resp.Answer[1].(*dns.SRV).Port)
	extra := map[string]string{}
	for _, rr := range resp.Extra {
		if a, ok := rr.(*dns.A); ok {
			extra[a.Hdr.Name] = a.A.String()
		}
	}
	require.Equal(t, map[string]string{"aaaaaaaa.alloc.drover.": "172.26.64.5", "bbbbbbbb.alloc.drover.": "10.0.0.9"}, extra)
}

func TestServer_NXDOMAINAndREFUSED(t *testing.T) {
	_, addr := fixture(t)
	for _, name := range []string{
		"nope.service.drover.", "web.service.staging.drover.", "eeeeeeee.alloc.drover.",
		"web.drover.", "a.b.c.d.drover.", "named.service.drover.",
	} {
		resp := query(t, addr, name, dns.TypeA, "udp")
		require.Equal(t, dns.RcodeNameError, resp.Rcode, name)
		require.Empty(t, resp.Answer, name)
	}
	for _, name := range []string{"example.com.", "drover.example.com.", "service.drover.io."} {
		resp := query(t, addr, name, dns.TypeA, "udp")
		require.Equal(t, dns.RcodeRefused, resp.Rcode, name)
		require.Empty(t, resp.Answer)
	}
	// A known name without records of the type asked: no error, no data.
	resp := query(t, addr, "web.service.drover.", dns.TypeAAAA, "udp")
	require.Equal(t, dns.RcodeSuccess, resp.Rcode)
	require.Empty(t, resp.Answer)
}

func TestServer_ListenAddsAddresses(t *testing.T) {
	cat := NewCatalog()
	s := NewServer(cat, time.Second, nil)
	require.NoError(t, s.Listen("127.0.0.1:0"))
	require.NoError(t, s.Listen("127.0.0.1:0"), "the same address again is no error")
	require.Len(t, s.Addrs(), 1)
	// Another address, added while the first serves.
	ln, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err == nil {
		ln.Close()
		require.NoError(t, s.Listen("127.0.0.2:0"))
		require.Len(t, s.Addrs(), 2)
	}
	// A busy port is the caller's error.
	busy := s.Addrs()[0]
	other := NewServer(cat, 0, nil)
	t.Cleanup(other.Close)
	require.Error(t, other.Listen(busy))
	require.Error(t, other.Listen("no-port"))

	cat.Set(3, []*structs.ServiceRegistration{reg(alloc1, "default", "web", "172.26.64.5", 8080)})
	resp := query(t, busy, "web.service.drover.", dns.TypeA, "udp")
	require.Equal(t, uint32(1), resp.Answer[0].Header().Ttl)
	s.Close()
	require.Error(t, s.Listen("127.0.0.1:0"))
}

func TestServer_ListenFixedPortTakenOnTCP(t *testing.T) {
	// A port free on UDP but taken on TCP: with the port named, that is
	// the caller's error and nothing stays bound; port 0 finds a pair.
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer tcp.Close()
	s := NewServer(NewCatalog(), 0, nil)
	t.Cleanup(s.Close)
	err = s.Listen(tcp.Addr().String())
	require.ErrorContains(t, err, "dns listen on tcp")
	require.Empty(t, s.Addrs())
	pc, err := net.ListenPacket("udp", tcp.Addr().String())
	require.NoError(t, err, "the failed Listen released its UDP socket")
	pc.Close()
	require.NoError(t, s.Listen("127.0.0.1:0"))
}

// fakeRegistry answers Service.NodeServices as a server would: blocking
// while the caller's index is current.
type fakeRegistry struct {
	mu      sync.Mutex
	changed chan struct{}
	index   uint64
	regs    []*structs.ServiceRegistration
	fail    int
	calls   int
}

func (f *fakeRegistry) set(index uint64, regs ...*structs.ServiceRegistration) {
	f.mu.Lock()
	f.index, f.regs = index, regs
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeRegistry) rpc(method string, args, reply any) error {
	req := args.(*structs.NodeServicesRequest)
	for {
		f.mu.Lock()
		f.calls++
		if f.fail > 0 {
			f.fail--
			f.mu.Unlock()
			return errors.New("no servers")
		}
		if f.index > req.MinQueryIndex {
			resp := reply.(*structs.ServiceGetResponse)
			resp.Index, resp.Services = f.index, f.regs
			f.mu.Unlock()
			return nil
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(req.MaxQueryTime):
			return nil
		}
	}
}

func TestWatch_FeedsTheCatalog(t *testing.T) {
	f := &fakeRegistry{changed: make(chan struct{}), index: 5, fail: 1,
		regs: []*structs.ServiceRegistration{reg(alloc1, "default", "web", "172.26.64.5", 8080)}}
	cat := NewCatalog()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Watch(ctx, f.rpc, cat, nil); close(done) }()
	require.Eventually(t, func() bool { return cat.Index() == 5 }, 5*time.Second, 5*time.Millisecond, "after a failed call it retries")
	require.Len(t, cat.Instances("default", "web"), 1)

	f.set(9, reg(alloc2, "default", "web", "10.0.0.9", 25000), reg(alloc3, "default", "web", "10.0.0.8", 25000))
	require.Eventually(t, func() bool { return len(cat.Instances("default", "web")) == 2 }, 5*time.Second, 5*time.Millisecond)
	ip, ok := cat.AllocAddress("cccccccc")
	require.True(t, ok)
	require.Equal(t, "10.0.0.8", ip.String())
	_, ok = cat.AllocAddress("aaaaaaaa")
	require.False(t, ok, "gone with its instance")

	cancel()
	f.set(10)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
}
