package structs

import (
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Diff types, from the old version's point of view.
const (
	DiffTypeNone    = "None"
	DiffTypeAdded   = "Added"
	DiffTypeDeleted = "Deleted"
	DiffTypeEdited  = "Edited"
)

// Annotations of a task diff: what the change does to the allocations
// running the task.
const (
	AnnotationForcesCreate            = "forces create"
	AnnotationForcesDestroy           = "forces destroy"
	AnnotationForcesInPlaceUpdate     = "forces in-place update"
	AnnotationForcesDestructiveUpdate = "forces create/destroy update"
)

// Kinds of update the scheduler makes to a group's allocations: the keys of
// GroupDiff.Updates.
const (
	UpdateTypeCreate            = "create"
	UpdateTypeStop              = "stop"
	UpdateTypeMigrate           = "migrate"
	UpdateTypeInPlaceUpdate     = "in-place update"
	UpdateTypeDestructiveUpdate = "destructive update"
	UpdateTypeReschedule        = "reschedule"
	UpdateTypeIgnore            = "ignore"
	UpdateTypeCanary            = "canary"
)

// JobDiff is what changes between the running version of a job and a new
// one; `job plan` prints it.
type JobDiff struct {
	Type    string        `json:"type"`
	ID      string        `json:"id"`
	Fields  []*FieldDiff  `json:"fields,omitempty"`
	Objects []*ObjectDiff `json:"objects,omitempty"`
	Groups  []*GroupDiff  `json:"groups,omitempty"`
}

// GroupDiff is the change of one task group. Updates counts what the
// scheduler will do to the group's allocations (place, in-place update,
// destructive update, stop, ...), filled from the plan's annotations.
type GroupDiff struct {
	Type    string         `json:"type"`
	Name    string         `json:"name"`
	Fields  []*FieldDiff   `json:"fields,omitempty"`
	Objects []*ObjectDiff  `json:"objects,omitempty"`
	Tasks   []*TaskDiff    `json:"tasks,omitempty"`
	Updates map[string]int `json:"updates,omitempty"`
}

// TaskDiff is the change of one task; Annotations say whether it forces a
// destructive update.
type TaskDiff struct {
	Type        string        `json:"type"`
	Name        string        `json:"name"`
	Fields      []*FieldDiff  `json:"fields,omitempty"`
	Objects     []*ObjectDiff `json:"objects,omitempty"`
	Annotations []string      `json:"annotations,omitempty"`
}

// ObjectDiff is the change of a nested block (resources, network, a
// constraint, ...).
type ObjectDiff struct {
	Type    string        `json:"type"`
	Name    string        `json:"name"`
	Fields  []*FieldDiff  `json:"fields,omitempty"`
	Objects []*ObjectDiff `json:"objects,omitempty"`
}

// FieldDiff is the change of one scalar field, values printed as strings.
type FieldDiff struct {
	Type        string   `json:"type"`
	Name        string   `json:"name"`
	Old         string   `json:"old,omitempty"`
	New         string   `json:"new,omitempty"`
	Annotations []string `json:"annotations,omitempty"`
}

// DiffJobs compares two versions of a job field by field, with the names
// of the job file: groups are matched by name, tasks by name within their
// group, ports by label, services by name. old nil means the job is new;
// new nil means it goes away. Server-set fields (status, version, indexes)
// are not compared. Only changed fields and blocks are listed, but every
// group and task is, with type None when unchanged, so the plan's counts
// have a place to go. Edited tasks are annotated with the kind of update
// TasksUpdated says their group's allocations get.
func DiffJobs(old, new *Job) *JobDiff {
	if old == nil && new == nil {
		return nil
	}
	d := &JobDiff{Type: DiffTypeEdited}
	switch {
	case old == nil:
		d.Type, d.ID = DiffTypeAdded, new.ID
	case new == nil:
		d.Type, d.ID = DiffTypeDeleted, old.ID
	default:
		d.ID = new.ID
	}
	d.Fields = diffFields(jobFields(old), jobFields(new))
	d.Objects = jobObjects(old, new)
	d.Groups = diffGroups(old, new)
	if d.Type == DiffTypeEdited && len(d.Fields) == 0 && len(d.Objects) == 0 && !anyChanged(d.Groups) {
		d.Type = DiffTypeNone
	}
	return d
}

// Annotate records in each group's diff what the plan does to its
// allocations, from the scheduler's dry run.
func (d *JobDiff) Annotate(a *PlanAnnotations) {
	if d == nil || a == nil {
		return
	}
	for _, g := range d.Groups {
		if u := a.DesiredTGUpdates[g.Name]; u != nil {
			g.Updates = u.Counts()
		}
	}
}

// Counts names the non-zero counts by update type (UpdateTypeCreate, ...).
func (u *DesiredUpdates) Counts() map[string]int {
	out := make(map[string]int)
	for _, c := range []struct {
		name string
		n    int
	}{
		{UpdateTypeCreate, u.Place},
		{UpdateTypeStop, u.Stop},
		{UpdateTypeMigrate, u.Migrate},
		{UpdateTypeInPlaceUpdate, u.InPlaceUpdate},
		{UpdateTypeDestructiveUpdate, u.DestructiveUpdate},
		{UpdateTypeCanary, u.Canary},
		{UpdateTypeReschedule, u.Reschedule + u.RescheduleLater},
		{UpdateTypeIgnore, u.Ignore},
	} {
		if c.n > 0 {
			out[c.name] = c.n
		}
	}
	return out
}

// TasksUpdated reports whether moving an allocation of group a to group b
// needs a new allocation (a destructive update: stop the old one, place a
// new one) rather than an update in place. What a running container was
// created with forces a new one: the set of tasks, a task's image,
// command, args, env, user, work dir or resources, and the group's
// network. The rest (count, meta, constraints, services, restart and
// reschedule policies, kill timeout) is applied in place.
func TasksUpdated(a, b *TaskGroup) bool {
	if len(a.Tasks) != len(b.Tasks) || networkChanged(a.Network, b.Network) {
		return true
	}
	for _, at := range a.Tasks {
		bt := b.LookupTask(at.Name)
		if bt == nil || taskDestructive(at, bt) {
			return true
		}
	}
	return false
}

func taskDestructive(a, b *Task) bool {
	return a.Image != b.Image || a.Command != b.Command || a.User != b.User || a.WorkDir != b.WorkDir ||
		!slices.Equal(a.Args, b.Args) || !mapsEqual(a.Env, b.Env) || !resourcesEqual(a.Resources, b.Resources)
}

func networkChanged(a, b *NetworkSpec) bool {
	if a == nil || b == nil {
		return (a == nil) != (b == nil)
	}
	return a.Mode != b.Mode || !reflect.DeepEqual(nonNilPorts(a.Ports), nonNilPorts(b.Ports))
}

func nonNilPorts(p []*Port) []*Port {
	if p == nil {
		return []*Port{}
	}
	return p
}

func resourcesEqual(a, b *Resources) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// mapsEqual treats nil and empty as equal, as the job file does.
func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func anyChanged(groups []*GroupDiff) bool {
	for _, g := range groups {
		if g.Type != DiffTypeNone {
			return true
		}
	}
	return false
}

// field is one scalar of a flattened block; an empty value is absent.
type field struct{ name, value string }

// diffFields compares two flattened blocks, in the new block's order with
// the fields only the old one has after.
func diffFields(old, new []field) []*FieldDiff {
	oldVals := make(map[string]string, len(old))
	for _, f := range old {
		oldVals[f.name] = f.value
	}
	var out []*FieldDiff
	seen := make(map[string]bool, len(new))
	for _, f := range new {
		seen[f.name] = true
		if fd := fieldDiff(f.name, oldVals[f.name], f.value); fd != nil {
			out = append(out, fd)
		}
	}
	for _, f := range old {
		if !seen[f.name] {
			if fd := fieldDiff(f.name, f.value, ""); fd != nil {
				out = append(out, fd)
			}
		}
	}
	return out
}

func fieldDiff(name, old, new string) *FieldDiff {
	switch {
	case old == new:
		return nil
	case old == "":
		return &FieldDiff{Type: DiffTypeAdded, Name: name, New: new}
	case new == "":
		return &FieldDiff{Type: DiffTypeDeleted, Name: name, Old: old}
	}
	return &FieldDiff{Type: DiffTypeEdited, Name: name, Old: old, New: new}
}

// objectDiff compares one block that may be absent on either side (nil
// flattened lists and children mean absent); it returns nil when nothing
// changed.
func objectDiff(name string, oldPresent, newPresent bool, old, new []field, children []*ObjectDiff) *ObjectDiff {
	if !oldPresent && !newPresent {
		return nil
	}
	d := &ObjectDiff{Name: name, Fields: diffFields(old, new), Objects: children}
	switch {
	case !oldPresent:
		d.Type = DiffTypeAdded
	case !newPresent:
		d.Type = DiffTypeDeleted
	case len(d.Fields) > 0 || len(d.Objects) > 0:
		d.Type = DiffTypeEdited
	default:
		return nil
	}
	return d
}

// keyed is one element of a list compared as a set: elements with the same
// key are the same element (edited if their fields differ). obj is the
// element itself, for blocks nested in it.
type keyed struct {
	key    string
	fields []field
	obj    any
}

// diffKeyed compares two lists of elements by key, in the new list's order
// with removed elements after. children, when not nil, compares the blocks
// nested in one element (either side may be nil).
func diffKeyed(name string, old, new []keyed, children func(old, new any) []*ObjectDiff) []*ObjectDiff {
	oldByKey := make(map[string]*keyed, len(old))
	for i := range old {
		oldByKey[old[i].key] = &old[i]
	}
	nested := func(o, n *keyed) []*ObjectDiff {
		if children == nil {
			return nil
		}
		var oo, no any
		if o != nil {
			oo = o.obj
		}
		if n != nil {
			no = n.obj
		}
		return children(oo, no)
	}
	var out []*ObjectDiff
	seen := make(map[string]bool, len(new))
	for i := range new {
		n := &new[i]
		seen[n.key] = true
		o := oldByKey[n.key]
		var of []field
		if o != nil {
			of = o.fields
		}
		if d := objectDiff(name, o != nil, true, of, n.fields, nested(o, n)); d != nil {
			out = append(out, d)
		}
	}
	for i := range old {
		if o := &old[i]; !seen[o.key] {
			out = append(out, objectDiff(name, true, false, o.fields, nil, nested(o, nil)))
		}
	}
	return out
}

// setDiff compares two lists of strings as sets: one field per added or
// removed element.
func setDiff(elem string, old, new []string) []*FieldDiff {
	var out []*FieldDiff
	for _, v := range new {
		if !slices.Contains(old, v) {
			out = append(out, &FieldDiff{Type: DiffTypeAdded, Name: elem, New: v})
		}
	}
	for _, v := range old {
		if !slices.Contains(new, v) {
			out = append(out, &FieldDiff{Type: DiffTypeDeleted, Name: elem, Old: v})
		}
	}
	return out
}

// setObject wraps setDiff in a block, nil when nothing changed.
func setObject(name, elem string, old, new []string, oldPresent, newPresent bool) *ObjectDiff {
	fields := setDiff(elem, old, new)
	if len(fields) == 0 {
		return nil
	}
	d := &ObjectDiff{Type: DiffTypeEdited, Name: name, Fields: fields}
	switch {
	case !oldPresent:
		d.Type = DiffTypeAdded
	case !newPresent:
		d.Type = DiffTypeDeleted
	}
	return d
}

// mapObject compares two maps (env, meta) as a block of one field per key.
func mapObject(name string, old, new map[string]string) *ObjectDiff {
	return objectDiff(name, len(old) > 0, len(new) > 0, mapFields(old), mapFields(new), nil)
}

func mapFields(m map[string]string) []field {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]field, len(keys))
	for i, k := range keys {
		// An empty value is still a value: quote nothing, but keep it present.
		v := m[k]
		if v == "" {
			v = `""`
		}
		out[i] = field{k, v}
	}
	return out
}

// listObject compares two ordered lists (args) position by position.
func listObject(name string, old, new []string) *ObjectDiff {
	return objectDiff(name, len(old) > 0, len(new) > 0, listFields(old), listFields(new), nil)
}

func listFields(l []string) []field {
	if len(l) == 0 {
		return nil
	}
	out := make([]field, len(l))
	for i, v := range l {
		if v == "" {
			v = `""`
		}
		out[i] = field{"[" + strconv.Itoa(i) + "]", v}
	}
	return out
}

func itoa(n int) string      { return strconv.Itoa(n) }
func btoa(b bool) string     { return strconv.FormatBool(b) }
func dtoa(d Duration) string { return d.String() }

// Job level.

func jobFields(j *Job) []field {
	if j == nil {
		return nil
	}
	return []field{
		{"type", j.Type},
		{"priority", itoa(j.Priority)},
		{"stop", btoa(j.Stop)},
	}
}

func jobObjects(old, new *Job) []*ObjectDiff {
	var o, n Job
	if old != nil {
		o = *old
	}
	if new != nil {
		n = *new
	}
	var out []*ObjectDiff
	if d := setObject("datacenters", "datacenter", o.Datacenters, n.Datacenters, old != nil, new != nil); d != nil {
		out = append(out, d)
	}
	out = append(out, placementObjects(o.Constraints, n.Constraints, o.Affinities, n.Affinities, o.Spreads, n.Spreads)...)
	if d := updateObject(o.Update, n.Update); d != nil {
		out = append(out, d)
	}
	if d := mapObject("meta", o.Meta, n.Meta); d != nil {
		out = append(out, d)
	}
	return out
}

// placementObjects compares constraints, affinities and spreads: sets of
// blocks, where an edited one shows as one removed and one added.
func placementObjects(oc, nc []*Constraint, oa, na []*Affinity, os, ns []*Spread) []*ObjectDiff {
	var out []*ObjectDiff
	out = append(out, diffKeyed("constraint", constraintElems(oc), constraintElems(nc), nil)...)
	out = append(out, diffKeyed("affinity", affinityElems(oa), affinityElems(na), nil)...)
	out = append(out, diffKeyed("spread", spreadElems(os), spreadElems(ns), nil)...)
	return out
}

func constraintElems(cs []*Constraint) []keyed {
	out := make([]keyed, 0, len(cs))
	for _, c := range cs {
		f := []field{{"attribute", c.Attribute}, {"operator", c.Operator}, {"value", c.Value}}
		out = append(out, keyed{key: c.Attribute + "\x00" + c.Operator + "\x00" + c.Value, fields: f})
	}
	return out
}

func affinityElems(as []*Affinity) []keyed {
	out := make([]keyed, 0, len(as))
	for _, a := range as {
		f := []field{{"attribute", a.Attribute}, {"operator", a.Operator}, {"value", a.Value}, {"weight", itoa(a.Weight)}}
		out = append(out, keyed{key: a.Attribute + "\x00" + a.Operator + "\x00" + a.Value + "\x00" + itoa(a.Weight), fields: f})
	}
	return out
}

func spreadElems(ss []*Spread) []keyed {
	out := make([]keyed, 0, len(ss))
	for _, s := range ss {
		f := []field{{"attribute", s.Attribute}, {"weight", itoa(s.Weight)}}
		for _, t := range s.Targets {
			f = append(f, field{"target[" + t.Value + "]", itoa(t.Percent)})
		}
		out = append(out, keyed{key: s.Attribute, fields: f})
	}
	return out
}

func updateObject(old, new *UpdateStrategy) *ObjectDiff {
	return objectDiff("update", old != nil, new != nil, updateFields(old), updateFields(new), nil)
}

func updateFields(u *UpdateStrategy) []field {
	if u == nil {
		return nil
	}
	return []field{
		{"max_parallel", itoa(u.MaxParallel)},
		{"min_healthy_time", dtoa(u.MinHealthyTime)},
		{"healthy_deadline", dtoa(u.HealthyDeadline)},
		{"progress_deadline", dtoa(u.ProgressDeadline)},
		{"auto_revert", btoa(u.AutoRevert)},
		{"auto_promote", btoa(u.AutoPromote)},
		{"canary", itoa(u.Canary)},
	}
}

// Groups.

func diffGroups(old, new *Job) []*GroupDiff {
	var og, ng []*TaskGroup
	if old != nil {
		og = old.Groups
	}
	if new != nil {
		ng = new.Groups
	}
	var out []*GroupDiff
	for _, n := range ng {
		var o *TaskGroup
		if old != nil {
			o = old.LookupGroup(n.Name)
		}
		out = append(out, diffGroup(o, n))
	}
	for _, o := range og {
		if new == nil || new.LookupGroup(o.Name) == nil {
			out = append(out, diffGroup(o, nil))
		}
	}
	return out
}

func diffGroup(old, new *TaskGroup) *GroupDiff {
	var o, n TaskGroup
	d := &GroupDiff{Type: DiffTypeEdited}
	switch {
	case old == nil:
		d.Type, d.Name, n = DiffTypeAdded, new.Name, *new
	case new == nil:
		d.Type, d.Name, o = DiffTypeDeleted, old.Name, *old
	default:
		d.Name, o, n = new.Name, *old, *new
	}
	d.Fields = diffFields(groupFields(old), groupFields(new))
	d.Objects = append(d.Objects, placementObjects(o.Constraints, n.Constraints, o.Affinities, n.Affinities, o.Spreads, n.Spreads)...)
	for _, od := range []*ObjectDiff{
		updateObject(o.Update, n.Update),
		objectDiff("restart", o.Restart != nil, n.Restart != nil, restartFields(o.Restart), restartFields(n.Restart), nil),
		objectDiff("reschedule", o.Reschedule != nil, n.Reschedule != nil, rescheduleFields(o.Reschedule), rescheduleFields(n.Reschedule), nil),
		networkObject(o.Network, n.Network),
	} {
		if od != nil {
			d.Objects = append(d.Objects, od)
		}
	}
	d.Objects = append(d.Objects, diffKeyed("service", serviceElems(o.Services), serviceElems(n.Services), serviceChildren)...)
	if od := mapObject("meta", o.Meta, n.Meta); od != nil {
		d.Objects = append(d.Objects, od)
	}

	// An edited task's annotation is its group's: one destructive change
	// replaces the whole allocation.
	editAnnotation := AnnotationForcesInPlaceUpdate
	if old != nil && new != nil && TasksUpdated(old, new) {
		editAnnotation = AnnotationForcesDestructiveUpdate
	}
	for _, nt := range n.Tasks {
		var ot *Task
		if old != nil {
			ot = old.LookupTask(nt.Name)
		}
		d.Tasks = append(d.Tasks, diffTask(ot, nt, editAnnotation))
	}
	for _, ot := range o.Tasks {
		if new == nil || new.LookupTask(ot.Name) == nil {
			d.Tasks = append(d.Tasks, diffTask(ot, nil, editAnnotation))
		}
	}
	if d.Type == DiffTypeEdited && len(d.Fields) == 0 && len(d.Objects) == 0 && !anyTaskChanged(d.Tasks) {
		d.Type = DiffTypeNone
	}
	return d
}

func anyTaskChanged(tasks []*TaskDiff) bool {
	for _, t := range tasks {
		if t.Type != DiffTypeNone {
			return true
		}
	}
	return false
}

func groupFields(g *TaskGroup) []field {
	if g == nil {
		return nil
	}
	return []field{{"count", itoa(g.Count)}}
}

func restartFields(r *RestartPolicy) []field {
	if r == nil {
		return nil
	}
	return []field{
		{"attempts", itoa(r.Attempts)},
		{"interval", dtoa(r.Interval)},
		{"delay", dtoa(r.Delay)},
		{"mode", r.Mode},
	}
}

func rescheduleFields(r *ReschedulePolicy) []field {
	if r == nil {
		return nil
	}
	return []field{
		{"attempts", itoa(r.Attempts)},
		{"interval", dtoa(r.Interval)},
		{"delay", dtoa(r.Delay)},
		{"delay_function", r.DelayFunction},
		{"max_delay", dtoa(r.MaxDelay)},
		{"unlimited", btoa(r.Unlimited)},
	}
}

func networkObject(old, new *NetworkSpec) *ObjectDiff {
	var of, nf []field
	var op, np []*Port
	if old != nil {
		of, op = []field{{"mode", old.Mode}}, old.Ports
	}
	if new != nil {
		nf, np = []field{{"mode", new.Mode}}, new.Ports
	}
	return objectDiff("network", old != nil, new != nil, of, nf, diffKeyed("port", portElems(op), portElems(np), nil))
}

func portElems(ps []*Port) []keyed {
	out := make([]keyed, 0, len(ps))
	for _, p := range ps {
		f := []field{{"label", p.Label}}
		if p.Static != 0 {
			f = append(f, field{"static", itoa(p.Static)})
		}
		if p.To != 0 {
			f = append(f, field{"to", itoa(p.To)})
		}
		out = append(out, keyed{key: p.Label, fields: f})
	}
	return out
}

func serviceElems(ss []*Service) []keyed {
	out := make([]keyed, 0, len(ss))
	for _, s := range ss {
		out = append(out, keyed{key: s.Name, fields: []field{{"name", s.Name}, {"port", s.Port}}, obj: s})
	}
	return out
}

// serviceChildren compares a service's tags (a set) and checks (by
// position: checks have no identity of their own).
func serviceChildren(old, new any) []*ObjectDiff {
	var o, n Service
	if old != nil {
		o = *old.(*Service)
	}
	if new != nil {
		n = *new.(*Service)
	}
	var out []*ObjectDiff
	if d := setObject("tags", "tag", o.Tags, n.Tags, len(o.Tags) > 0, len(n.Tags) > 0); d != nil {
		out = append(out, d)
	}
	return append(out, diffKeyed("check", checkElems(o.Checks), checkElems(n.Checks), nil)...)
}

func checkElems(cs []*Check) []keyed {
	out := make([]keyed, 0, len(cs))
	for i, c := range cs {
		f := []field{
			{"name", c.Name}, {"type", c.Type}, {"path", c.Path}, {"port", c.Port},
			{"command", c.Command}, {"args", strings.Join(c.Args, " ")}, {"task", c.Task},
			{"interval", dtoa(c.Interval)}, {"timeout", dtoa(c.Timeout)},
		}
		out = append(out, keyed{key: itoa(i), fields: f})
	}
	return out
}

// Tasks.

func diffTask(old, new *Task, editAnnotation string) *TaskDiff {
	var o, n Task
	d := &TaskDiff{Type: DiffTypeEdited}
	switch {
	case old == nil:
		d.Type, d.Name, n = DiffTypeAdded, new.Name, *new
		d.Annotations = []string{AnnotationForcesCreate}
	case new == nil:
		d.Type, d.Name, o = DiffTypeDeleted, old.Name, *old
		d.Annotations = []string{AnnotationForcesDestroy}
	default:
		d.Name, o, n = new.Name, *old, *new
	}
	d.Fields = diffFields(taskFields(old), taskFields(new))
	for _, od := range []*ObjectDiff{
		listObject("args", o.Args, n.Args),
		mapObject("env", o.Env, n.Env),
		objectDiff("resources", o.Resources != nil, n.Resources != nil, resourceFields(o.Resources), resourceFields(n.Resources), nil),
		mapObject("meta", o.Meta, n.Meta),
	} {
		if od != nil {
			d.Objects = append(d.Objects, od)
		}
	}
	if d.Type == DiffTypeEdited {
		if len(d.Fields) == 0 && len(d.Objects) == 0 {
			d.Type = DiffTypeNone
		} else {
			d.Annotations = []string{editAnnotation}
		}
	}
	return d
}

func taskFields(t *Task) []field {
	if t == nil {
		return nil
	}
	return []field{
		{"image", t.Image},
		{"command", t.Command},
		{"user", t.User},
		{"work_dir", t.WorkDir},
		{"kill_timeout", dtoa(t.KillTimeout)},
	}
}

func resourceFields(r *Resources) []field {
	if r == nil {
		return nil
	}
	return []field{{"cpu", itoa(r.CPU)}, {"memory", itoa(r.Memory)}}
}
