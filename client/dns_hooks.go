package client

import (
	"net"

	"github.com/drover-sh/drover/client/dns"
	"github.com/drover-sh/drover/structs"
)

// gatewayDNSPort is where bridge tasks find the node's DNS: the
// nameserver in their resolv.conf is the bridge gateway, which has no
// way to name another port.
const gatewayDNSPort = "53"

// startDNS starts the node's DNS server on DNSAddr and the watch that
// feeds its catalog; the watch runs until shutdown. A malformed address
// fails the client. One that cannot be bound (another agent on this
// machine holds it) is logged and the node runs on: DNS is a convenience
// its tasks can do without, running them is not.
func (c *Client) startDNS() error {
	if c.cfg.DNSAddr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.cfg.DNSAddr); err != nil {
		return structs.NewError(structs.ErrInvalid, "client config dns_addr %q: %v", c.cfg.DNSAddr, err)
	}
	cat := dns.NewCatalog()
	srv := dns.NewServer(cat, 0, c.logger)
	if err := srv.Listen(c.cfg.DNSAddr); err != nil {
		c.logger.Error("dns server cannot listen; service names will not resolve on this address", "address", c.cfg.DNSAddr, "error", err)
	}
	c.dns = srv
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		dns.Watch(c.ctx, c.rpc, cat, c.logger)
	}()
	return nil
}

// DNSAddrs returns the addresses the node's DNS server answers on.
func (c *Client) DNSAddrs() []string {
	if c.dns == nil {
		return nil
	}
	return c.dns.Addrs()
}

// listenDNSOnGateway makes the DNS server answer on the gateway of the
// allocation's bridge, which exists once the first bridge allocation is
// set up. Listening again on the same gateway does nothing; a failure is
// logged, and the allocation's tasks then resolve through the host's
// nameservers only.
func (c *Client) listenDNSOnGateway(ar *allocRunner) {
	if c.dns == nil {
		return
	}
	ar.mu.RLock()
	gw := ""
	if ar.network != nil {
		gw = ar.network.Data["gateway"]
	}
	ar.mu.RUnlock()
	if net.ParseIP(gw) == nil {
		return
	}
	if err := c.dns.Listen(net.JoinHostPort(gw, gatewayDNSPort)); err != nil {
		ar.logger.Error("dns server cannot listen on the bridge gateway", "gateway", gw, "error", err)
	}
}
