package command

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestJobValidate_GoodFile(t *testing.T) {
	r := run(t, "job", "validate", writeFile(t, "web.yaml", webYAML))
	requireOK(t, r)
	require.Equal(t, "Job validation successful\n", r.stdout)

	r = runWithInput(t, webYAML, "job", "validate", "-")
	requireOK(t, r)
}

func TestJobValidate_BadFilePrintsEveryProblemWithItsPosition(t *testing.T) {
	t.Setenv("DROVER_ADDR", "http://127.0.0.1:1") // offline: nothing may be asked
	path := writeFile(t, "bad.yaml", `id: web
type: service
priority: 500
groups:
  - name: frontend
    count: 1
    tasks:
      - name: server
        image: busybox
        imagee: typo
`)
	r := run(t, "job", "validate", path)
	require.Equal(t, 1, r.code)
	require.Empty(t, r.stdout)
	problems := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	line := regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:(\d+):(\d+): \S.*$`)
	for _, p := range problems {
		require.Regexp(t, line, p)
	}
	require.Contains(t, r.stderr, path+":3:11: ", "priority is out of range")
	require.Contains(t, r.stderr, path+":10:9: ", "imagee is not a field")
}

func TestJobValidate_Usage(t *testing.T) {
	r := run(t, "job", "validate")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "Error: missing argument: <file|->\n")

	r = run(t, "job", "validate", "/nonexistent.yaml")
	require.Equal(t, 1, r.code)
	require.Equal(t, "Error: reading job file: open /nonexistent.yaml: no such file or directory\n", r.stderr)
}
