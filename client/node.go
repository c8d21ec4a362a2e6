package client

import (
	"context"
	"maps"
	"math/rand/v2"
	"reflect"
	"time"

	"github.com/drover-sh/drover/client/fingerprint"
	"github.com/drover-sh/drover/structs"
)

// driverFingerprintTimeout bounds one driver fingerprint: a runtime that
// does not answer in time is reported unhealthy rather than stalling
// heartbeats.
const driverFingerprintTimeout = 10 * time.Second

// fingerprintDrivers reads what can change while the agent runs: the
// driver's health and the CNI plugins.
func (c *Client) fingerprintDrivers() map[string]*structs.DriverInfo {
	ctx, cancel := context.WithTimeout(c.ctx, driverFingerprintTimeout)
	defer cancel()
	d := c.driver.Fingerprint(ctx)
	if d == nil {
		d = &structs.DriverInfo{HealthDescription: "driver reported nothing"}
	}
	cni, _ := fingerprint.CNI(c.cfg.CNIPluginDir)
	now := time.Now().UnixNano()
	d.UpdateTime, cni.UpdateTime = now, now
	return map[string]*structs.DriverInfo{c.driver.Name(): d, "cni": cni}
}

// buildNode assembles the node from the host facts, the config and the
// drivers. Resources are the machine's totals; Reserved travels beside
// them and the scheduler subtracts it.
func (c *Client) buildNode(drivers map[string]*structs.DriverInfo) *structs.Node {
	attrs := maps.Clone(c.host.Attributes)
	for name, d := range drivers {
		for k, v := range d.Attributes {
			attrs[k] = v
		}
		attrs["driver."+name] = boolString(d.Healthy)
	}
	res := c.host.Resources
	n := &structs.Node{
		ID:         c.cfg.NodeID,
		Name:       c.cfg.Name,
		Datacenter: c.cfg.Datacenter,
		NodeClass:  c.cfg.NodeClass,
		HTTPAddr:   c.cfg.HTTPAddr,
		Attributes: attrs,
		Meta:       maps.Clone(c.cfg.Meta),
		Resources:  &res,
		Drivers:    drivers,
		Status:     structs.NodeStatusReady,
	}
	if r := c.cfg.Reserved; r != nil {
		rc := *r
		n.Reserved = &rc
	}
	return n
}

func boolString(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// driversChanged compares fingerprints, ignoring when they were taken.
func driversChanged(a, b map[string]*structs.DriverInfo) bool {
	if len(a) != len(b) {
		return true
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok {
			return true
		}
		xc, yc := *x, *y
		xc.UpdateTime, yc.UpdateTime = 0, 0
		if !reflect.DeepEqual(xc, yc) {
			return true
		}
	}
	return false
}

// fingerprintLoop re-reads the drivers' health every FingerprintInterval
// and asks nodeLoop to register again when it changed (the scheduler
// stops placing on a node whose runtime is unhealthy). It runs apart from
// the heartbeats, so a runtime that is slow to answer never delays one.
func (c *Client) fingerprintLoop() {
	t := time.NewTicker(c.cfg.FingerprintInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		drivers := c.fingerprintDrivers()
		c.nodeMu.Lock()
		changed := driversChanged(c.node.Drivers, drivers)
		if changed {
			c.node = c.buildNode(drivers)
		}
		c.nodeMu.Unlock()
		if changed {
			c.logger.Info("node fingerprint changed; registering again")
			select {
			case c.reregister <- struct{}{}:
			default:
			}
		}
	}
}

// nodeLoop registers the node, then heartbeats at the TTL the servers
// ask for and registers again when the fingerprint changes or the
// servers forgot the node.
func (c *Client) nodeLoop() {
	if !c.registerUntilDone() {
		return
	}
	hb := time.NewTimer(c.heartbeatDelay())
	defer hb.Stop()
	// retry re-sends a registration that failed; stopped while none is
	// pending.
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	failures := time.Duration(0)
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.reregister:
			retry.Stop()
			if err := c.register(); err != nil && err != errShutdown {
				c.logger.Warn("registering the new fingerprint failed; retrying", "error", err)
				retry.Reset(time.Second)
			}
		case <-retry.C:
			if err := c.register(); err != nil && err != errShutdown {
				c.logger.Warn("registering the new fingerprint failed; retrying", "error", err)
				retry.Reset(5 * time.Second)
			}
		case <-hb.C:
			err := c.heartbeat()
			switch {
			case err == nil:
				failures = 0
				hb.Reset(c.heartbeatDelay())
				continue
			case structs.IsNotFound(err):
				// The servers garbage collected the node (it was down
				// long enough): it comes back as it is now.
				c.logger.Warn("servers do not know this node; registering again")
				if err = c.register(); err == nil {
					failures = 0
					hb.Reset(c.heartbeatDelay())
					continue
				}
			}
			if err == errShutdown {
				return
			}
			c.logger.Warn("heartbeat failed", "error", err)
			failures = backoff(failures, 250*time.Millisecond, 5*time.Second)
			hb.Reset(failures)
		}
	}
}

// heartbeatDelay is when the next heartbeat is due: between 3/4 and 7/8
// of the TTL, so one lost heartbeat still leaves time for a retry before
// the servers' timer runs out.
func (c *Client) heartbeatDelay() time.Duration {
	c.nodeMu.RLock()
	ttl := c.heartbeatTTL
	c.nodeMu.RUnlock()
	if ttl <= 0 {
		ttl = 10 * time.Second
	}
	return ttl*3/4 + rand.N(ttl/8+1)
}

// registerUntilDone retries registration until it succeeds; false means
// the client shut down first.
func (c *Client) registerUntilDone() bool {
	wait := time.Duration(0)
	for {
		err := c.register()
		if err == nil {
			return true
		}
		if err == errShutdown {
			return false
		}
		c.logger.Warn("node registration failed; retrying", "error", err)
		wait = backoff(wait, 250*time.Millisecond, 5*time.Second)
		if !c.sleep(wait) {
			return false
		}
	}
}

// register sends the current fingerprint.
func (c *Client) register() error {
	node := c.Node()
	var resp structs.NodeUpdateResponse
	if err := c.rpc("Node.Register", &structs.NodeRegisterRequest{Node: node}, &resp); err != nil {
		return err
	}
	c.applyHeartbeatResponse(&resp)
	c.registerOnce.Do(func() {
		c.logger.Info("node registered", "heartbeat_ttl", resp.HeartbeatTTL)
		close(c.registered)
	})
	return nil
}

func (c *Client) heartbeat() error {
	var resp structs.NodeUpdateResponse
	req := &structs.NodeHeartbeatRequest{NodeID: c.cfg.NodeID, Status: structs.NodeStatusReady}
	if err := c.rpc("Node.Heartbeat", req, &resp); err != nil {
		return err
	}
	c.applyHeartbeatResponse(&resp)
	return nil
}

func (c *Client) applyHeartbeatResponse(resp *structs.NodeUpdateResponse) {
	if resp.HeartbeatTTL > 0 {
		c.nodeMu.Lock()
		c.heartbeatTTL = resp.HeartbeatTTL
		c.nodeMu.Unlock()
	}
	c.servers.setLearned(resp.Servers)
}
