package scheduler

import (
	"github.com/drover-sh/drover/structs"
)

// implicitTarget collects the percentage a spread's targets leave over.
const implicitTarget = "*"

// spreadIterator scores nodes by how a placement there would move the
// group's allocations toward its spreads: target percentages per
// attribute value, or an even spread over the values seen.
type spreadIterator struct {
	ctx       *evalContext
	source    RankIterator
	spreads   []*spreadState
	sumWeight float64
}

type spreadState struct {
	attr   target
	weight float64
	// desired is the wanted count per value; empty for an even spread.
	desired map[string]float64
	// used is the group's live allocations per value.
	used map[string]int
}

func (it *spreadIterator) setGroup(job *structs.Job, tg *structs.TaskGroup) {
	it.spreads = it.spreads[:0]
	it.sumWeight = 0
	for _, list := range [][]*structs.Spread{job.Spreads, tg.Spreads} {
		for _, s := range list {
			if s == nil {
				continue
			}
			weight := s.Weight
			if weight == 0 {
				weight = 50
			}
			st := &spreadState{attr: parseTarget(s.Attribute), weight: float64(weight), used: make(map[string]int)}
			if len(s.Targets) > 0 {
				st.desired = make(map[string]float64, len(s.Targets)+1)
				sum := 0
				for _, t := range s.Targets {
					st.desired[t.Value] = float64(t.Percent) / 100 * float64(tg.Count)
					sum += t.Percent
				}
				if sum < 100 {
					st.desired[implicitTarget] = float64(100-sum) / 100 * float64(tg.Count)
				}
			}
			it.spreads = append(it.spreads, st)
			it.sumWeight += st.weight
		}
	}
	if len(it.spreads) == 0 {
		return
	}
	for nodeID, allocs := range it.ctx.jobAllocs {
		n := 0
		for _, a := range allocs {
			if a.TaskGroup == tg.Name {
				n++
			}
		}
		if n == 0 {
			continue
		}
		node := it.ctx.node(nodeID)
		if node == nil {
			continue
		}
		for _, st := range it.spreads {
			if v, ok := st.attr.resolve(node); ok {
				st.used[v] += n
			}
		}
	}
}

func (it *spreadIterator) Next() *RankedNode {
	opt := it.source.Next()
	if opt == nil || len(it.spreads) == 0 {
		return opt
	}
	total := 0.0
	for _, st := range it.spreads {
		v, ok := st.attr.resolve(opt.Node)
		if !ok {
			// Nodes without the attribute are the worst place to go.
			total--
			continue
		}
		if st.desired == nil {
			total += evenSpreadBoost(st.used, v)
			continue
		}
		desired, ok := st.desired[v]
		if !ok {
			desired, ok = st.desired[implicitTarget]
		}
		if !ok || desired == 0 {
			total--
			continue
		}
		// The placement itself counts: +1.
		total += (desired - float64(st.used[v]+1)) / desired * (st.weight / it.sumWeight)
	}
	if total != 0 {
		opt.Scores = append(opt.Scores, total)
	}
	return opt
}

func (it *spreadIterator) Reset() { it.source.Reset() }

// evenSpreadBoost is Nomad's even-spread score: values below the least
// used one get a boost, values at the most used one a penalty.
func evenSpreadBoost(used map[string]int, v string) float64 {
	if len(used) == 0 {
		return 0
	}
	cur := used[v]
	minC, maxC := -1, 0
	for _, n := range used {
		if minC < 0 || n < minC {
			minC = n
		}
		maxC = max(maxC, n)
	}
	if _, seen := used[v]; !seen {
		// A value nothing runs on yet is where the next one should go.
		return 1
	}
	switch {
	case cur != minC:
		return float64(minC-cur) / float64(minC)
	case minC == maxC:
		return -1
	}
	return float64(maxC-minC) / float64(minC)
}
