package checks

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Health of an instance: unknown until each of its checks ran once.
type Health int

const (
	Unknown Health = iota
	Healthy
	Unhealthy
)

func (h Health) String() string {
	switch h {
	case Healthy:
		return "healthy"
	case Unhealthy:
		return "unhealthy"
	}
	return "unknown"
}

// Set runs the checks of many instances, each check on its own interval,
// and calls OnChange whenever an instance's health changes. An instance
// is healthy once every one of its checks passed on its last run and
// turns unhealthy on the first failed run: a check that starts failing
// is seen within one interval plus its timeout, which is never more than
// two intervals.
type Set struct {
	logger   hclog.Logger
	client   *http.Client
	onChange func(id string, h Health, output string)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	instances map[string]*instance
}

type instance struct {
	checks  []*Check
	cancel  context.CancelFunc
	results []Result // by check, OK false until run
	ran     []bool
	health  Health
}

// NewSet returns an empty set. onChange is called from the check
// goroutines, one call at a time, with the Set's lock held: it must
// return quickly and must not call the Set.
func NewSet(logger hclog.Logger, onChange func(id string, h Health, output string)) *Set {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Set{
		logger: logger.Named("checks"),
		// Health checks never follow a redirect into another service
		// nor keep connections to instances that may be gone.
		client: &http.Client{
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		onChange:  onChange,
		ctx:       ctx,
		cancel:    cancel,
		instances: make(map[string]*instance),
	}
}

// Watch starts checking an instance, or restarts it when its checks
// changed; the same checks again leave it running with its health. An
// instance without checks is not watched: the caller decides its health.
func (s *Set) Watch(id string, checks []*Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return
	}
	if old := s.instances[id]; old != nil {
		if slices.EqualFunc(old.checks, checks, func(a, b *Check) bool { return a.Same(b) }) {
			return
		}
		old.cancel()
		delete(s.instances, id)
	}
	if len(checks) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	inst := &instance{checks: checks, cancel: cancel, results: make([]Result, len(checks)), ran: make([]bool, len(checks))}
	s.instances[id] = inst
	for i, c := range checks {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.loop(ctx, id, inst, i, c)
		}()
	}
}

// Unwatch stops checking an instance. No OnChange call for it starts
// after Unwatch returns.
func (s *Set) Unwatch(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inst := s.instances[id]; inst != nil {
		inst.cancel()
		delete(s.instances, id)
	}
}

// Health returns an instance's current health (Unknown when unwatched).
func (s *Set) Health(id string) Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inst := s.instances[id]; inst != nil {
		return inst.health
	}
	return Unknown
}

// Close stops every check and waits for them.
func (s *Set) Close() {
	s.cancel()
	s.wg.Wait()
}

// loop runs one check now and then every interval until ctx ends.
func (s *Set) loop(ctx context.Context, id string, inst *instance, i int, c *Check) {
	interval := c.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		r := Run(ctx, c, s.client)
		if ctx.Err() != nil {
			return
		}
		s.record(id, inst, i, r)
		t.Reset(max(interval-time.Since(start), 0))
	}
}

// record stores a result and reports a change of the instance's health.
// It holds the lock while calling onChange so that an Unwatch that
// returned has no report left in flight.
func (s *Set) record(id string, inst *instance, i int, r Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.instances[id] != inst {
		return // unwatched or replaced meanwhile
	}
	inst.results[i], inst.ran[i] = r, true
	health, output := Healthy, ""
	for k, res := range inst.results {
		switch {
		case inst.ran[k] && !res.OK:
			health, output = Unhealthy, res.Output
		case !inst.ran[k] && health == Healthy:
			health = Unknown
		}
		if health == Unhealthy {
			break
		}
	}
	if health == Unknown || health == inst.health {
		return
	}
	if health == Unhealthy {
		s.logger.Info("instance unhealthy", "instance_id", id, "check", inst.checks[i].Name, "output", output)
	} else {
		s.logger.Debug("instance healthy", "instance_id", id)
	}
	inst.health = health
	s.onChange(id, health, output)
}
