package scheduler

import (
	"math"

	"github.com/drover-sh/drover/structs"
)

// RankedNode is a feasible node with its scores for one placement. It
// lives in the evaluation context's pool and is valid until the next
// selection.
type RankedNode struct {
	Node       *structs.Node
	FinalScore float64
	// Scores holds one entry per ranker that had an opinion; the final
	// score is their mean.
	Scores []float64
	// Ports are the host ports picked for the placement.
	Ports []structs.AllocatedPort
}

// RankIterator yields ranked nodes.
type RankIterator interface {
	Next() *RankedNode
	Reset()
}

// feasibleRankIterator turns feasible nodes into ranked ones.
type feasibleRankIterator struct {
	ctx    *evalContext
	source FeasibleIterator
}

func (it *feasibleRankIterator) Next() *RankedNode {
	node := it.source.Next()
	if node == nil {
		return nil
	}
	return it.ctx.ranked(node)
}

func (it *feasibleRankIterator) Reset() { it.source.Reset() }

// Port range a node hands dynamic ports out of when it names none.
const (
	defaultMinDynamicPort = 20000
	defaultMaxDynamicPort = 32000
)

// binPackIterator drops nodes the group does not fit on (CPU, memory,
// ports), picks the group's host ports, and scores how full the node
// would be: fuller is better with binpack, emptier with spread.
type binPackIterator struct {
	ctx    *evalContext
	source RankIterator
	spread bool

	cpu, memory int
	ports       []*structs.Port
}

// binPackMaxScore is the best raw fit score (see fitScore).
const binPackMaxScore = 18.0

func (it *binPackIterator) setGroup(tg *structs.TaskGroup) {
	it.cpu, it.memory = 0, 0
	for _, t := range tg.Tasks {
		if t != nil && t.Resources != nil {
			it.cpu += t.Resources.CPU
			it.memory += t.Resources.Memory
		}
	}
	it.ports = nil
	if tg.Network != nil && tg.Network.Mode != structs.NetworkModeNone {
		it.ports = tg.Network.Ports
	}
}

func (it *binPackIterator) Next() *RankedNode {
	for {
		opt := it.source.Next()
		if opt == nil {
			return nil
		}
		node := opt.Node
		totalCPU, totalMem := nodeCapacity(node)
		u := it.ctx.nodeUsage(node)
		usedCPU, usedMem := u.CPU+it.cpu, u.Memory+it.memory
		if usedCPU > totalCPU || totalCPU <= 0 {
			it.ctx.exhaustNode(dimCPU)
			continue
		}
		if usedMem > totalMem || totalMem <= 0 {
			it.ctx.exhaustNode(dimMemory)
			continue
		}
		if dim := it.assignPorts(opt, u); dim != "" {
			it.ctx.exhaustNode(dim)
			continue
		}
		score := fitScore(float64(usedCPU)/float64(totalCPU), float64(usedMem)/float64(totalMem), it.spread)
		opt.Scores = append(opt.Scores, score/binPackMaxScore)
		return opt
	}
}

func (it *binPackIterator) Reset() { it.source.Reset() }

// fitScore is Nomad's best-fit v3 score from the node's CPU and memory
// utilisation with the placement: 10^free(cpu) + 10^free(mem) is 20 on an
// empty node and 2 on a full one, so 20 minus it grows as the node fills
// (binpack) and it minus 2 grows as the node empties (spread).
func fitScore(cpuUtil, memUtil float64, spread bool) float64 {
	total := math.Pow(10, 1-cpuUtil) + math.Pow(10, 1-memUtil)
	score := 20 - total
	if spread {
		score = total - 2
	}
	return min(max(score, 0), binPackMaxScore)
}

// assignPorts picks the group's host ports on the node into opt.Ports, or
// returns the exhausted dimension.
func (it *binPackIterator) assignPorts(opt *RankedNode, u *structs.NodeUsage) string {
	if len(it.ports) == 0 {
		return ""
	}
	lo, hi := defaultMinDynamicPort, defaultMaxDynamicPort
	if r := opt.Node.Resources; r != nil && r.MinDynamicPort > 0 && r.MaxDynamicPort >= r.MinDynamicPort {
		lo, hi = r.MinDynamicPort, r.MaxDynamicPort
	}
	taken := func(p int) bool {
		if u.PortUsed(p) {
			return true
		}
		for _, q := range opt.Ports {
			if q.Value == p {
				return true
			}
		}
		return false
	}
	// Static ports first, so a dynamic pick never takes one of them.
	for _, p := range it.ports {
		if p.Static == 0 {
			continue
		}
		if taken(p.Static) {
			return dimPorts
		}
		opt.Ports = append(opt.Ports, structs.AllocatedPort{Label: p.Label, Value: p.Static, To: portTo(p, p.Static)})
	}
	for _, p := range it.ports {
		if p.Static != 0 {
			continue
		}
		v := it.pickDynamic(lo, hi, taken)
		if v == 0 {
			return dimPorts
		}
		opt.Ports = append(opt.Ports, structs.AllocatedPort{Label: p.Label, Value: v, To: portTo(p, v)})
	}
	return ""
}

// pickDynamic returns a free port of [lo, hi], or 0. Random picks keep
// allocations placed in the same instant from colliding in the applier;
// a scan settles nearly full ranges.
func (it *binPackIterator) pickDynamic(lo, hi int, taken func(int) bool) int {
	span := hi - lo + 1
	for range 16 {
		if p := lo + it.ctx.rng.IntN(span); !taken(p) {
			return p
		}
	}
	start := it.ctx.rng.IntN(span)
	for i := range span {
		if p := lo + (start+i)%span; !taken(p) {
			return p
		}
	}
	return 0
}

// portTo is the port inside the allocation's network: the one asked for,
// or the host port itself.
func portTo(p *structs.Port, host int) int {
	if p.To > 0 {
		return p.To
	}
	return host
}

// jobAntiAffinityIterator penalises nodes that already run allocations
// of the same group, so replicas do not share a fate.
type jobAntiAffinityIterator struct {
	ctx    *evalContext
	source RankIterator
	tg     string
	count  int
}

func (it *jobAntiAffinityIterator) setGroup(tg *structs.TaskGroup) {
	it.tg = tg.Name
	it.count = max(tg.Count, 1)
}

func (it *jobAntiAffinityIterator) Next() *RankedNode {
	opt := it.source.Next()
	if opt == nil {
		return nil
	}
	collisions := 0
	for _, a := range it.ctx.jobAllocs[opt.Node.ID] {
		if a.TaskGroup == it.tg {
			collisions++
		}
	}
	if collisions > 0 {
		opt.Scores = append(opt.Scores, -float64(collisions+1)/float64(it.count))
	}
	return opt
}

func (it *jobAntiAffinityIterator) Reset() { it.source.Reset() }

// penaltyIterator penalises the nodes a replacement should avoid: where
// the allocation it replaces failed.
type penaltyIterator struct {
	source RankIterator
	nodes  map[string]struct{}
}

func (it *penaltyIterator) Next() *RankedNode {
	opt := it.source.Next()
	if opt == nil {
		return nil
	}
	if _, ok := it.nodes[opt.Node.ID]; ok {
		opt.Scores = append(opt.Scores, -1)
	}
	return opt
}

func (it *penaltyIterator) Reset() { it.source.Reset() }

// affinityIterator scores nodes by the job's and group's affinities: the
// sum of the weights that match over the sum of all weights, in [-1, 1].
type affinityIterator struct {
	ctx        *evalContext
	source     RankIterator
	affinities []*weightedMatcher
	sumWeights float64
}

type weightedMatcher struct {
	*matcher
	weight float64
}

func (it *affinityIterator) setGroup(job *structs.Job, tg *structs.TaskGroup) {
	it.affinities = it.affinities[:0]
	it.sumWeights = 0
	for _, list := range [][]*structs.Affinity{job.Affinities, tg.Affinities} {
		for _, a := range list {
			if a == nil || a.Weight == 0 {
				continue
			}
			it.affinities = append(it.affinities, &weightedMatcher{newMatcher(a.Attribute, a.Operator, a.Value), float64(a.Weight)})
			it.sumWeights += math.Abs(float64(a.Weight))
		}
	}
}

func (it *affinityIterator) Next() *RankedNode {
	opt := it.source.Next()
	if opt == nil || len(it.affinities) == 0 {
		return opt
	}
	total := 0.0
	for _, a := range it.affinities {
		if a.match(it.ctx, opt.Node) {
			total += a.weight
		}
	}
	if total != 0 {
		opt.Scores = append(opt.Scores, total/it.sumWeights)
	}
	return opt
}

func (it *affinityIterator) Reset() { it.source.Reset() }

// scoreNormalizationIterator sets the final score to the mean of the
// rankers' scores.
type scoreNormalizationIterator struct {
	source RankIterator
}

func (it *scoreNormalizationIterator) Next() *RankedNode {
	opt := it.source.Next()
	if opt == nil || len(opt.Scores) == 0 {
		return opt
	}
	sum := 0.0
	for _, s := range opt.Scores {
		sum += s
	}
	opt.FinalScore = sum / float64(len(opt.Scores))
	return opt
}

func (it *scoreNormalizationIterator) Reset() { it.source.Reset() }

// limitIterator stops after limit options, so a placement looks at a few
// nodes instead of all of them (the power of two choices, generalised).
// Up to maxSkip options scoring at or below threshold are set aside and
// only used when nothing better turns up.
type limitIterator struct {
	source    RankIterator
	limit     int
	maxSkip   int
	threshold float64

	seen      int
	skipped   []*RankedNode
	skipIndex int
}

func (it *limitIterator) Next() *RankedNode {
	if it.seen >= it.limit {
		return nil
	}
	opt := it.nextOption()
	for opt != nil && opt.FinalScore <= it.threshold && len(it.skipped) < it.maxSkip && it.skipIndex == 0 {
		it.skipped = append(it.skipped, opt)
		opt = it.source.Next()
	}
	if opt == nil {
		opt = it.nextOption()
	}
	if opt != nil {
		it.seen++
	}
	return opt
}

// nextOption takes from the source, then from the set-aside options.
func (it *limitIterator) nextOption() *RankedNode {
	if opt := it.source.Next(); opt != nil {
		return opt
	}
	if it.skipIndex < len(it.skipped) {
		opt := it.skipped[it.skipIndex]
		it.skipIndex++
		return opt
	}
	return nil
}

func (it *limitIterator) Reset() {
	it.source.Reset()
	it.seen = 0
	it.skipped = it.skipped[:0]
	it.skipIndex = 0
}

// maxScoreIterator returns the best of its source's options.
type maxScoreIterator struct {
	source RankIterator
}

func (it *maxScoreIterator) Next() *RankedNode {
	var best *RankedNode
	for opt := it.source.Next(); opt != nil; opt = it.source.Next() {
		if best == nil || opt.FinalScore > best.FinalScore {
			best = opt
		}
	}
	return best
}

func (it *maxScoreIterator) Reset() { it.source.Reset() }
