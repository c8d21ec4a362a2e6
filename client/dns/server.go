package dns

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/miekg/dns"

	"github.com/drover-sh/drover/structs"
)

// Domain is the zone the server is authoritative for.
const Domain = "drover."

// DefaultTTL is short: instances come and go with their checks, and a
// resolver that caches longer keeps sending traffic to one that left.
const DefaultTTL = 5 * time.Second

// Server answers queries for the drover. zone on any number of
// addresses, each served over UDP and TCP. Addresses can be added while
// it runs (the bridge gateway appears with the first bridge allocation).
type Server struct {
	src    Source
	ttl    uint32
	logger hclog.Logger

	mu      sync.Mutex
	servers map[string][]*dns.Server // by address
	closed  bool
}

// NewServer returns a server that listens nowhere yet. ttl 0 means
// DefaultTTL.
func NewServer(src Source, ttl time.Duration, logger hclog.Logger) *Server {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Server{src: src, ttl: uint32(ttl / time.Second), logger: logger.Named("dns"), servers: map[string][]*dns.Server{}}
}

// Listen serves on addr (host:port) over UDP and TCP. Listening on an
// address already served does nothing. The sockets are bound before it
// returns, so a bad or busy address is its error.
func (s *Server) Listen(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return structs.NewError(structs.ErrInvalid, "dns address %q: %v", addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("dns server is closed")
	}
	if _, ok := s.servers[addr]; ok {
		return nil
	}
	pc, ln, err := listenPair(addr)
	if err != nil {
		return err
	}
	handler := dns.HandlerFunc(s.serveDNS)
	udp := &dns.Server{PacketConn: pc, Handler: handler}
	tcp := &dns.Server{Listener: ln, Handler: handler}
	s.servers[addr] = []*dns.Server{udp, tcp}
	for _, srv := range []*dns.Server{udp, tcp} {
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				s.logger.Debug("dns listener ended", "address", addr, "error", err)
			}
		}()
	}
	s.logger.Info("dns server listening", "address", pc.LocalAddr().String())
	return nil
}

// listenPair binds UDP and TCP on the same port. With port 0 the kernel
// picks the UDP port, and that port may be taken on TCP by someone else:
// then it tries again with another, a few times.
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	attempts := 1
	if port == "0" {
		attempts = 16
	}
	for i := 0; ; i++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns listen on udp %s: %w", addr, err)
		}
		tcpAddr := net.JoinHostPort(hostOf(addr), strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port))
		ln, err := net.Listen("tcp", tcpAddr)
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if i+1 >= attempts || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("dns listen on tcp %s: %w", tcpAddr, err)
		}
	}
}

// Addrs returns the UDP addresses served (with the ports actually bound).
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.servers))
	for _, srvs := range s.servers {
		out = append(out, srvs[0].PacketConn.LocalAddr().String())
	}
	return out
}

// Close stops every listener.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for addr, srvs := range s.servers {
		for _, srv := range srvs {
			srv.Shutdown()
		}
		delete(s.servers, addr)
	}
}

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}

func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := s.answer(req)
	if _, isUDP := w.RemoteAddr().(*net.UDPAddr); isUDP {
		size := 512
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	}
	if err := w.WriteMsg(resp); err != nil {
		s.logger.Debug("writing dns answer failed", "error", err)
	}
}

// answer builds the response to one query.
func (s *Server) answer(req *dns.Msg) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = false
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		resp.SetRcode(req, dns.RcodeNotImplemented)
		return resp
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if !dns.IsSubDomain(Domain, name) {
		// Not ours, and this server never forwards.
		resp.SetRcode(req, dns.RcodeRefused)
		return resp
	}
	resp.Authoritative = true
	labels := dns.SplitDomainName(name)
	n := len(labels)
	switch {
	case n == 3 && labels[1] == "service":
		s.service(resp, q, structs.DefaultNamespace, labels[0])
	case n == 4 && labels[1] == "service":
		s.service(resp, q, labels[2], labels[0])
	case n == 3 && labels[1] == "alloc":
		ip, ok := s.src.AllocAddress(labels[0])
		if !ok {
			resp.SetRcode(req, dns.RcodeNameError)
			return resp
		}
		if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
			resp.Answer = append(resp.Answer, s.a(q.Name, ip)...)
		}
	case n == 1:
		// The zone apex exists; it has no records we serve.
	default:
		resp.SetRcode(req, dns.RcodeNameError)
	}
	return resp
}

// service answers for one service: NXDOMAIN without healthy instances,
// A records (one per distinct address) or SRV records with their
// targets' A records in the additional section.
func (s *Server) service(resp *dns.Msg, q dns.Question, namespace, name string) {
	regs := s.src.Instances(namespace, name)
	if len(regs) == 0 {
		resp.Rcode = dns.RcodeNameError
		return
	}
	switch q.Qtype {
	case dns.TypeA, dns.TypeANY:
		seen := map[string]bool{}
		for _, r := range regs {
			if !seen[r.Address] {
				seen[r.Address] = true
				resp.Answer = append(resp.Answer, s.a(q.Name, net.ParseIP(r.Address))...)
			}
		}
	case dns.TypeSRV:
		targets := map[string]bool{}
		for _, r := range regs {
			target := structs.ShortID(r.AllocID) + ".alloc." + Domain
			resp.Answer = append(resp.Answer, &dns.SRV{
				Hdr:      dns.RR_Header{Name: q.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: s.ttl},
				Priority: 0, Weight: 1, Port: uint16(r.Port), Target: target,
			})
			if !targets[target] {
				targets[target] = true
				resp.Extra = append(resp.Extra, s.a(target, net.ParseIP(r.Address))...)
			}
		}
	}
}

// a is the A record of an IPv4 address (none for IPv6: no AAAA yet).
func (s *Server) a(name string, ip net.IP) []dns.RR {
	v4 := ip.To4()
	if v4 == nil {
		return nil
	}
	return []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: s.ttl}, A: v4}}
}
