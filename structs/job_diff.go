package structs

// Diff types, from the old version's point of view.
const (
	DiffTypeNone    = "None"
	DiffTypeAdded   = "Added"
	DiffTypeDeleted = "Deleted"
	DiffTypeEdited  = "Edited"
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
