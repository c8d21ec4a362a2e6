package containerd

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

// countingProxy stands in front of the registry and counts the requests
// that reach it.
func countingProxy(t *testing.T, registry string) (string, *atomic.Int64) {
	return authProxy(t, registry, "", "")
}

// authProxy is a countingProxy that wants HTTP basic auth when user is set.
func authProxy(t *testing.T, registry, user, pass string) (string, *atomic.Int64) {
	var n atomic.Int64
	target, err := url.Parse("http://" + registry)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if u, p, ok := r.BasicAuth(); user != "" && (!ok || u != user || p != pass) {
			w.Header().Set("WWW-Authenticate", `Basic realm="drover-test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), &n
}

func TestPullImage_PullsThenFindsPresent(t *testing.T) {
	d, f := newDriver(t)
	proxy, requests := countingProxy(t, f.registry)
	image := proxy + "/drover/busybox:latest"
	ctx := context.Background()

	desc, err := d.PullImage(ctx, image)
	require.NoError(t, err)
	require.Regexp(t, `^pulled in \d`, desc)
	require.Positive(t, requests.Load())

	before := requests.Load()
	desc, err = d.PullImage(ctx, image)
	require.NoError(t, err)
	require.Equal(t, "already present", desc)
	require.Equal(t, before, requests.Load(), "a present image costs no registry call")
}

func TestPullImage_BasicAuth(t *testing.T) {
	f := sharedFixture(t)
	proxy, _ := authProxy(t, f.registry, "drover", "s3cret")
	image := proxy + "/drover/busybox:latest"

	anonymous, _ := newDriver(t)
	_, err := anonymous.PullImage(context.Background(), image)
	require.Error(t, err)
	require.False(t, errors.Is(err, driver.ErrImageNotFound), "%v", err)
	require.Contains(t, err.Error(), "no basic auth credentials")

	wrong, _ := newDriver(t, func(c *Config) { c.Auth = map[string]RegistryAuth{proxy: {Username: "drover", Password: "wrong"}} })
	_, err = wrong.PullImage(context.Background(), image)
	require.Error(t, err)
	require.Contains(t, err.Error(), "401 Unauthorized")
	require.False(t, errors.Is(err, driver.ErrImageNotFound), "%v", err)

	d, _ := newDriver(t, func(c *Config) { c.Auth = map[string]RegistryAuth{proxy: {Username: "drover", Password: "s3cret"}} })
	desc, err := d.PullImage(context.Background(), image)
	require.NoError(t, err)
	require.Regexp(t, `^pulled in`, desc)
}

func TestPullImage_MissingImageKeepsRegistryMessage(t *testing.T) {
	d, f := newDriver(t)
	_, err := d.PullImage(context.Background(), f.registry+"/drover/busybox:nope")
	require.ErrorIs(t, err, driver.ErrImageNotFound)
	require.Contains(t, err.Error(), "MANIFEST_UNKNOWN: manifest unknown")
	require.Contains(t, err.Error(), "busybox:nope")

	_, err = d.PullImage(context.Background(), f.registry+"/drover/nothing:latest")
	require.ErrorIs(t, err, driver.ErrImageNotFound)
	require.Contains(t, err.Error(), "registry says MANIFEST_UNKNOWN")
}

func TestPullImage_Invalid(t *testing.T) {
	d, err := New(Config{Address: filepath.Join(t.TempDir(), "x.sock")})
	require.NoError(t, err)
	defer d.Close()
	_, err = d.PullImage(context.Background(), "bad image name!")
	require.Equal(t, structs.ErrInvalid, structs.CodeOf(err))
	require.Contains(t, err.Error(), "image:")
}

func TestPullImage_UnreachableRegistry(t *testing.T) {
	d, _ := newDriver(t)
	port, err := freePort()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = d.PullImage(ctx, fmt.Sprintf("127.0.0.1:%d/drover/busybox:latest", port))
	require.Error(t, err)
	require.False(t, errors.Is(err, driver.ErrImageNotFound), "a registry that is down is not a missing image: %v", err)
	require.Contains(t, err.Error(), "connection refused")
}

func TestPullImage_ImportsFromImageDir(t *testing.T) {
	f := sharedFixture(t)
	d, _ := newDriver(t, func(c *Config) { c.ImageDir = f.imageDir })
	ctx := context.Background()

	// Nothing listens on 127.0.0.1:5000 for this name in the tests (or, on
	// a dev machine, a registry may): the archive is tried first.
	desc, err := d.PullImage(ctx, archiveImage)
	require.NoError(t, err)
	require.Regexp(t, `^imported from busybox\.tar in \d`, desc)

	desc, err = d.PullImage(ctx, archiveImage)
	require.NoError(t, err)
	require.Equal(t, "already present", desc)

	cfg := taskConfig(t, f, "imported", "/bin/echo", "from the archive")
	cfg.Image = archiveImage
	_, err = d.StartTask(ctx, cfg)
	require.NoError(t, err)
	require.Zero(t, waitExit(t, d, cfg.ID, 10*time.Second).ExitCode)
	readEventually(t, cfg.StdoutPath, "from the archive\n")
}

func TestPullImage_ImportsDockerAndBareTagArchives(t *testing.T) {
	f := sharedFixture(t)
	dir := t.TempDir()
	layout := "oci:" + filepath.Join(f.imageDir, "oci") + ":latest"
	for _, dest := range []string{
		// What `docker save` makes: RepoTags in manifest.json.
		"docker-archive:" + filepath.Join(dir, "saved.tar") + ":drover/app:1",
		// An OCI archive whose ref name is only a tag: named by its file.
		"oci-archive:" + filepath.Join(dir, "tool.tar") + ":v2",
	} {
		out, err := exec.Command("skopeo", "--insecure-policy", "copy", "--quiet", layout, dest).CombinedOutput()
		require.NoError(t, err, string(out))
	}
	d, _ := newDriver(t, func(c *Config) { c.ImageDir = dir })
	ctx := context.Background()
	for image, archive := range map[string]string{"drover/app:1": "saved.tar", "tool:v2": "tool.tar"} {
		desc, err := d.PullImage(ctx, image)
		require.NoError(t, err, image)
		require.Regexp(t, `^imported from `+archive, desc)
		cfg := taskConfig(t, f, strings.NewReplacer("/", "-", ":", "-").Replace(image), "/bin/echo", image)
		cfg.Image = image
		_, err = d.StartTask(ctx, cfg)
		require.NoError(t, err)
		require.Zero(t, waitExit(t, d, cfg.ID, 10*time.Second).ExitCode)
		readEventually(t, cfg.StdoutPath, image+"\n")
	}
}

func TestOCIRefName(t *testing.T) {
	require.Equal(t, "docker.io/library/busybox:latest", ociRefName("latest", "busybox"))
	require.Equal(t, "127.0.0.1:5000/drover/busybox:latest", ociRefName("127.0.0.1:5000/drover/busybox:latest", "x"))
	require.Equal(t, "docker.io/drover/app:1.0", ociRefName("drover/app:1.0", "x"))
	require.Equal(t, "", ociRefName("", "x"))
	require.Equal(t, "", ociRefName("latest", "Not Valid"))
}

// writeTar writes an archive holding only the given small files.
func writeTar(t *testing.T, p string, files map[string]string) {
	f, err := os.Create(p)
	require.NoError(t, err)
	tw := tar.NewWriter(f)
	// A big first entry checks that unrelated bodies are skipped.
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "blobs/sha256/big", Mode: 0o644, Size: 1 << 20}))
	_, err = tw.Write(make([]byte, 1<<20))
	require.NoError(t, err)
	for name, body := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}))
		_, err := tw.Write([]byte(body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, f.Close())
}

func TestFindArchive(t *testing.T) {
	dir := t.TempDir()
	writeTar(t, filepath.Join(dir, "app.tar"), map[string]string{
		"./index.json": `{"schemaVersion":2,"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"1.0"}}]}`,
	})
	writeTar(t, filepath.Join(dir, "saved.tar"), map[string]string{
		"manifest.json": `[{"RepoTags":["registry.example:5000/team/api:2"]}]`,
	})
	writeTar(t, filepath.Join(dir, "ctr.tar"), map[string]string{
		"index.json": `{"schemaVersion":2,"manifests":[{"annotations":{"io.containerd.image.name":"docker.io/library/redis:7","org.opencontainers.image.ref.name":"7"}}]}`,
	})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.tar"), []byte("not a tar"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644))

	for ref, want := range map[string]string{
		"docker.io/library/app:1.0":          "app.tar",
		"registry.example:5000/team/api:2":   "saved.tar",
		"docker.io/library/redis:7":          "ctr.tar",
		"docker.io/library/app:2.0":          "",
		"registry.example:5000/team/api:3.0": "",
	} {
		got, err := findArchive(dir, ref)
		require.NoError(t, err)
		if want == "" {
			require.Empty(t, got, ref)
			continue
		}
		require.Equal(t, filepath.Join(dir, want), got, ref)
	}

	got, err := findArchive(filepath.Join(dir, "absent"), "docker.io/library/app:1.0")
	require.NoError(t, err, "a missing image dir holds no images")
	require.Empty(t, got)
}

func TestRegistryErrors(t *testing.T) {
	require.Equal(t, "MANIFEST_UNKNOWN: manifest unknown; NAME_UNKNOWN: no repo",
		registryErrors("404 Not Found", []byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"},{"code":"NAME_UNKNOWN","message":"no repo"}]}`)))
	require.Equal(t, "404 Not Found: gone", registryErrors("404 Not Found", []byte("gone\n")))
	require.Equal(t, "404 Not Found", registryErrors("404 Not Found", nil))
}

func TestRegistries_Scheme(t *testing.T) {
	r := newRegistries([]string{"registry.lan:5000"}, map[string]RegistryAuth{"docker.io": {Username: "u", Password: "p"}})
	for host, want := range map[string]string{
		"127.0.0.1:5000": "http", "localhost:5000": "http", "registry.lan:5000": "http",
		"registry.example": "https", "docker.io": "https",
	} {
		h, err := r.Hosts(host)
		require.NoError(t, err)
		require.Equal(t, want, h[0].Scheme, host)
	}
	h, _ := r.Hosts("docker.io")
	require.Equal(t, "registry-1.docker.io", h[0].Host)
	user, pass, _ := r.credentials("registry-1.docker.io")
	require.Equal(t, "u", user)
	require.Equal(t, "p", pass)
}
