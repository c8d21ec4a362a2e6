package api

import "context"

// Status reads the Raft leadership as the agent sees it.
type Status struct{ c *Client }

// Status returns the status endpoints.
func (c *Client) Status() *Status { return &Status{c: c} }

// Leader returns the leader's RPC address, "" when there is none.
func (s *Status) Leader(ctx context.Context) (string, error) {
	var out string
	if _, err := s.c.query(ctx, "/status/leader", nil, &out); err != nil {
		return "", err
	}
	return out, nil
}

// Peers returns the RPC addresses of the Raft peers.
func (s *Status) Peers(ctx context.Context) ([]string, error) {
	var out []string
	if _, err := s.c.query(ctx, "/status/peers", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}
