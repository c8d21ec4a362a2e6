package structs

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var updateCodecGolden = flag.Bool("update-codec-golden", false, "rewrite testdata/codec-golden.json with the encodings of this build")

// codecTypes is every struct type of the package; each may travel in a
// Raft entry, a snapshot, an RPC or the client's state file.
var codecTypes = []any{
	(*Allocation)(nil),
	(*DesiredTransition)(nil),
	(*AllocatedResources)(nil),
	(*AllocatedPort)(nil),
	(*TaskState)(nil),
	(*TaskEvent)(nil),
	(*AllocDeploymentStatus)(nil),
	(*RescheduleTracker)(nil),
	(*RescheduleEvent)(nil),
	(*AllocListStub)(nil),
	(*Deployment)(nil),
	(*DeploymentState)(nil),
	(*DeploymentUpdateRequest)(nil),
	(*DeploymentSpecificRequest)(nil),
	(*SingleDeploymentResponse)(nil),
	(*DeploymentListRequest)(nil),
	(*DeploymentListResponse)(nil),
	(*DeploymentFailRequest)(nil),
	(*DeploymentPromoteRequest)(nil),
	(*DeploymentUpdateResponse)(nil),
	(*JobRevertRequest)(nil),
	(*Error)(nil),
	(*FieldError)(nil),
	(*ValidationError)(nil),
	(*Evaluation)(nil),
	(*AllocMetric)(nil),
	(*TaskGroup)(nil),
	(*RestartPolicy)(nil),
	(*ReschedulePolicy)(nil),
	(*NetworkSpec)(nil),
	(*Port)(nil),
	(*Service)(nil),
	(*Check)(nil),
	(*Job)(nil),
	(*Constraint)(nil),
	(*Affinity)(nil),
	(*Spread)(nil),
	(*SpreadTarget)(nil),
	(*UpdateStrategy)(nil),
	(*JobListStub)(nil),
	(*JobDiff)(nil),
	(*GroupDiff)(nil),
	(*TaskDiff)(nil),
	(*ObjectDiff)(nil),
	(*FieldDiff)(nil),
	(*Member)(nil),
	(*RaftServer)(nil),
	(*MemberEvent)(nil),
	(*Node)(nil),
	(*NodeResources)(nil),
	(*DriverInfo)(nil),
	(*DrainStrategy)(nil),
	(*NodeListStub)(nil),
	(*NodeUsage)(nil),
	(*Plan)(nil),
	(*PlanAnnotations)(nil),
	(*DesiredUpdates)(nil),
	(*DeploymentStatusUpdate)(nil),
	(*PlanResult)(nil),
	(*PlanRejection)(nil),
	(*ApplyPlanResultsRequest)(nil),
	(*PlacementError)(nil),
	(*PlanRejectedError)(nil),
	(*QueryOptions)(nil),
	(*QueryMeta)(nil),
	(*WriteRequest)(nil),
	(*WriteMeta)(nil),
	(*JobRegisterRequest)(nil),
	(*JobRegisterResponse)(nil),
	(*JobDeregisterRequest)(nil),
	(*JobDeregisterResponse)(nil),
	(*JobSpecificRequest)(nil),
	(*SingleJobResponse)(nil),
	(*JobListRequest)(nil),
	(*JobListResponse)(nil),
	(*JobVersionsResponse)(nil),
	(*EvalUpdateRequest)(nil),
	(*EvalDeleteRequest)(nil),
	(*EvalSpecificRequest)(nil),
	(*SingleEvalResponse)(nil),
	(*EvalListRequest)(nil),
	(*EvalListResponse)(nil),
	(*GenericRequest)(nil),
	(*LeaderResponse)(nil),
	(*PeersResponse)(nil),
	(*RaftConfigurationResponse)(nil),
	(*RaftPeerRequest)(nil),
	(*GenericResponse)(nil),
	(*ForceLeaveRequest)(nil),
	(*NodeRegisterRequest)(nil),
	(*NodeHeartbeatRequest)(nil),
	(*NodeUpdateStatusRequest)(nil),
	(*NodeUpdateResponse)(nil),
	(*NodeUpdateDrainRequest)(nil),
	(*NodeUpdateEligibilityRequest)(nil),
	(*NodeUpdateStatusResponse)(nil),
	(*NodeSpecificRequest)(nil),
	(*SingleNodeResponse)(nil),
	(*NodeListRequest)(nil),
	(*NodeListResponse)(nil),
	(*NodeAllocsResponse)(nil),
	(*AllocUpdateRequest)(nil),
	(*AllocSpecificRequest)(nil),
	(*SingleAllocResponse)(nil),
	(*AllocListRequest)(nil),
	(*AllocListResponse)(nil),
	(*JobAllocationsResponse)(nil),
	(*JobPlanRequest)(nil),
	(*JobPlanResponse)(nil),
	(*AllocGCRequest)(nil),
	(*JobBatchDeregisterRequest)(nil),
	(*NamespacedID)(nil),
	(*AllocUpdateDesiredTransitionRequest)(nil),
	(*NodeDeregisterRequest)(nil),
	(*NodeClientAllocsResponse)(nil),
	(*AllocsGetRequest)(nil),
	(*AllocsGetResponse)(nil),
	(*AllocStopRequest)(nil),
	(*AllocStopResponse)(nil),
	(*ServiceRegistration)(nil),
	(*ServiceListStub)(nil),
	(*ServiceRegistrationUpsertRequest)(nil),
	(*ServiceRegistrationDeleteRequest)(nil),
	(*ServiceListRequest)(nil),
	(*ServiceListResponse)(nil),
	(*ServiceGetRequest)(nil),
	(*ServiceGetResponse)(nil),
	(*NodeServicesRequest)(nil),
	(*Task)(nil),
	(*Resources)(nil),
	(*VersionCheck)(nil),
}

// TestCodec_WireFormatIsStable decodes, for every type, the bytes recorded
// in testdata/codec-golden.json for a filled value, and compares the value;
// then it checks that this build's encoding decodes back to it. Raft logs,
// snapshots and client state files written by earlier builds must stay
// readable: a renamed field tag or a changed field type fails here. (The
// record was also checked against go-msgpack's codecgen encoders, which
// write fields in another order; decoders read either.)
func TestCodec_WireFormatIsStable(t *testing.T) {
	path := "testdata/codec-golden.json"
	got := map[string]string{}
	for _, typ := range codecTypes {
		rt := reflect.TypeOf(typ).Elem()
		v := reflect.New(rt)
		fillValue(rand.New(rand.NewPCG(1, uint64(len(rt.Name())))), v.Elem(), 0)
		b, err := encodeValue(v.Interface())
		require.NoError(t, err, rt.Name())
		got[rt.Name()] = base64.StdEncoding.EncodeToString(b)
	}
	if *updateCodecGolden {
		out, err := json.MarshalIndent(got, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, append(out, '\n'), 0o644))
		return
	}
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	want := map[string]string{}
	require.NoError(t, json.Unmarshal(raw, &want))
	for _, typ := range codecTypes {
		rt := reflect.TypeOf(typ).Elem()
		name := rt.Name()
		encodings := map[string]string{"current": got[name]}
		// A type added after the record has only this build's encoding.
		if w, ok := want[name]; ok {
			encodings["recorded"] = w
		}
		filled := reflect.New(rt)
		fillValue(rand.New(rand.NewPCG(1, uint64(len(name)))), filled.Elem(), 0)
		for source, enc := range encodings {
			b, err := base64.StdEncoding.DecodeString(enc)
			require.NoError(t, err)
			dec := reflect.New(rt)
			require.NoError(t, Decode(b, dec.Interface()), "%s: decoding the %s encoding", name, source)
			require.Equal(t, filled.Interface(), dec.Interface(),
				"%s: the %s encoding decodes to another value", name, source)
		}
	}
}

// TestCodec_TypesListed keeps codecTypes complete: a struct type missing
// from it would go untested.
func TestCodec_TypesListed(t *testing.T) {
	listed := map[string]bool{}
	for _, typ := range codecTypes {
		listed[reflect.TypeOf(typ).Elem().Name()] = true
	}
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		require.NoError(t, err)
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.TYPE {
				continue
			}
			for _, spec := range gen.Specs {
				ts := spec.(*ast.TypeSpec)
				if _, isStruct := ts.Type.(*ast.StructType); isStruct && ts.Name.IsExported() && ts.TypeParams == nil {
					require.True(t, listed[ts.Name.Name], "struct %s (%s) is not in codecTypes", ts.Name.Name, file)
				}
			}
		}
	}
}

func encodeValue(v any) ([]byte, error) {
	b, err := Encode(0, v)
	if err != nil {
		return nil, err
	}
	return b[1:], nil // without the message type byte
}

// fillValue sets every exported, encoded field of v to a non-zero value
// drawn from r, every collection to one element, up to a depth.
func fillValue(r *rand.Rand, v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(randomWord(r))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1 + r.Int64N(100))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1 + r.Uint64N(100))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(0.5 + float64(r.IntN(100)))
	case reflect.Pointer:
		if depth > 8 {
			return
		}
		p := reflect.New(v.Type().Elem())
		fillValue(r, p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		if depth > 8 {
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fillValue(r, s.Index(0), depth+1)
		v.Set(s)
	case reflect.Map:
		if depth > 8 {
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), 1)
		k := reflect.New(v.Type().Key()).Elem()
		fillValue(r, k, depth+1)
		e := reflect.New(v.Type().Elem()).Elem()
		fillValue(r, e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || skippedByCodec(f) {
				continue
			}
			fillValue(r, v.Field(i), depth+1)
		}
	}
}

func skippedByCodec(f reflect.StructField) bool {
	for _, key := range []string{"codec", "json"} {
		if tag, ok := f.Tag.Lookup(key); ok {
			return strings.Split(tag, ",")[0] == "-"
		}
	}
	return false
}

func randomWord(r *rand.Rand) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 3+r.IntN(6))
	for i := range b {
		b[i] = letters[r.IntN(len(letters))]
	}
	return string(b)
}
