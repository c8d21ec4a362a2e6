package scheduler

import (
	"math"

	"github.com/drover-sh/drover/structs"
)

// Limit-iterator settings: options scoring at or below skipThreshold
// (nodes with a penalty) are set aside up to maxSkip times, hoping for
// better ones.
const (
	skipThreshold = 0.0
	maxSkip       = 3
)

// stack chains the feasibility checks and rankers that pick one node for
// one placement:
//
//	nodes -> drivers, job and group constraints -> distinct_hosts ->
//	distinct_property -> fit and ports (binpack|spread) -> job
//	anti-affinity -> reschedule penalty -> affinities -> spreads ->
//	mean score -> limit -> best score
type stack struct {
	ctx   *evalContext
	job   *structs.Job
	batch bool

	source      *staticIterator
	drivers     *driverChecker
	constraints *constraintChecker
	checkers    *checkerIterator
	distinctH   *distinctHostsChecker
	distinctP   *distinctPropertyChecker
	binPack     *binPackIterator
	antiAff     *jobAntiAffinityIterator
	penalty     *penaltyIterator
	affinity    *affinityIterator
	spread      *spreadIterator
	limit       *limitIterator
	maxScore    *maxScoreIterator

	baseLimit int
	// groups caches each group's compiled constraints.
	groups map[string][]*matcher
	jobCon []*matcher
}

func newStack(ctx *evalContext, batch bool, algorithm structs.SchedulerAlgorithm) *stack {
	s := &stack{ctx: ctx, batch: batch, groups: make(map[string][]*matcher)}
	s.source = &staticIterator{ctx: ctx}
	s.constraints = &constraintChecker{ctx: ctx}
	s.distinctH = &distinctHostsChecker{ctx: ctx}
	s.distinctP = &distinctPropertyChecker{ctx: ctx}
	s.drivers = &driverChecker{ctx: ctx}
	s.checkers = &checkerIterator{source: s.source, checkers: []FeasibilityChecker{
		s.drivers, s.constraints, s.distinctH, s.distinctP,
	}}
	ranked := &feasibleRankIterator{ctx: ctx, source: s.checkers}
	s.binPack = &binPackIterator{ctx: ctx, source: ranked, spread: algorithm == structs.SchedulerAlgorithmSpread}
	s.antiAff = &jobAntiAffinityIterator{ctx: ctx, source: s.binPack}
	s.penalty = &penaltyIterator{source: s.antiAff}
	s.affinity = &affinityIterator{ctx: ctx, source: s.penalty}
	s.spread = &spreadIterator{ctx: ctx, source: s.affinity}
	norm := &scoreNormalizationIterator{source: s.spread}
	s.limit = &limitIterator{source: norm, maxSkip: maxSkip, threshold: skipThreshold}
	s.maxScore = &maxScoreIterator{source: s.limit}
	return s
}

// setNodes sets the candidate nodes, already shuffled by the caller; the
// first pref of them are looked at first (0: no preference).
func (s *stack) setNodes(nodes []*structs.Node, pref int) {
	s.source.setNodes(nodes, pref)
	// Looking at log2(n) nodes finds a near-best one at a fraction of the
	// cost of looking at all; batch jobs care more about throughput than
	// fit and look at two.
	s.baseLimit = 2
	if n := len(nodes); !s.batch && n > 0 {
		s.baseLimit = max(s.baseLimit, int(math.Ceil(math.Log2(float64(n)))))
	}
}

func (s *stack) setJob(job *structs.Job) {
	s.job = job
	s.jobCon = compileConstraints(job.Constraints)
	clear(s.groups)
}

// selectOptions adjust one selection.
type selectOptions struct {
	// penaltyNodes are nodes to avoid: where the replaced allocation
	// failed.
	penaltyNodes map[string]struct{}
}

// Select returns the best node for one allocation of tg, or nil; the
// context's metric says why. The result is valid until the next Select.
func (s *stack) Select(tg *structs.TaskGroup, opts *selectOptions) *RankedNode {
	s.ctx.resetSelect()
	con, ok := s.groups[tg.Name]
	if !ok {
		con = append(append([]*matcher(nil), s.jobCon...), compileConstraints(tg.Constraints)...)
		s.groups[tg.Name] = con
	}
	s.constraints.constraints = con
	s.drivers.setGroup(tg)
	s.distinctH.setGroup(s.job, tg)
	s.distinctP.setGroup(s.job, tg)
	s.binPack.setGroup(tg)
	s.antiAff.setGroup(tg)
	s.penalty.nodes = nil
	if opts != nil {
		s.penalty.nodes = opts.penaltyNodes
	}
	s.affinity.setGroup(s.job, tg)
	s.spread.setGroup(s.job, tg)

	s.limit.limit = s.baseLimit
	if len(s.affinity.affinities) > 0 || len(s.spread.spreads) > 0 {
		// Affinities and spreads only work if the nodes they favour are
		// seen, so they look at every node.
		s.limit.limit = math.MaxInt
	}
	s.maxScore.Reset()
	return s.maxScore.Next()
}

// feasibleOn reports whether node passes tg's feasibility checks, without
// looking at resources: whether an allocation may stay there.
func (s *stack) feasibleOn(tg *structs.TaskGroup, node *structs.Node) bool {
	if node == nil || !inDatacenters(node.Datacenter, s.job.Datacenters) {
		return false
	}
	con, ok := s.groups[tg.Name]
	if !ok {
		con = append(append([]*matcher(nil), s.jobCon...), compileConstraints(tg.Constraints)...)
		s.groups[tg.Name] = con
	}
	for _, m := range con {
		if !m.match(s.ctx, node) {
			return false
		}
	}
	_, ok = driversFit(node, groupNeedsCNI(tg))
	return ok
}
