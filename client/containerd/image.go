package containerd

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drover-sh/drover/client/driver"
	"github.com/drover-sh/drover/structs"
)

// imageNameAnnotation is containerd's annotation for an image's full name
// in an archive's index (images.AnnotationImageName).
const imageNameAnnotation = "io.containerd.image.name"

// normalizeRef turns a user's image ("busybox", "127.0.0.1:5000/x:1")
// into containerd's full name ("docker.io/library/busybox:latest").
func normalizeRef(image string) (string, error) {
	if image == "" {
		return "", structs.NewError(structs.ErrInvalid, "image: must not be empty")
	}
	named, err := reference.ParseDockerRef(image)
	if err != nil {
		return "", structs.NewError(structs.ErrInvalid, "image: %q: %v", image, err)
	}
	return named.String(), nil
}

// PullImage implements driver.Driver. Pulls of one image are serialised,
// so concurrent tasks on the same image pull it once.
func (d *Driver) PullImage(ctx context.Context, image string) (string, error) {
	ref, err := normalizeRef(image)
	if err != nil {
		return "", err
	}
	ctx = d.nsCtx(ctx)
	unlock := d.images.lock(ref)
	defer unlock()
	start := time.Now()

	img, err := d.client.GetImage(ctx, ref)
	switch {
	case err == nil:
		unpacked, err := img.IsUnpacked(ctx, snapshotter)
		if err != nil {
			return "", fmt.Errorf("image %s: checking its snapshot: %w", ref, err)
		}
		if unpacked {
			return "already present", nil
		}
		if err := img.Unpack(ctx, snapshotter); err != nil {
			return "", fmt.Errorf("image %s: unpacking: %w", ref, err)
		}
		return fmt.Sprintf("unpacked in %s", since(start)), nil
	case !errdefs.IsNotFound(err):
		return "", fmt.Errorf("image %s: %w", ref, err)
	}

	if d.cfg.ImageDir != "" {
		archive, err := findArchive(d.cfg.ImageDir, ref)
		if err != nil {
			return "", err
		}
		if archive != "" {
			if err := d.importArchive(ctx, archive, ref); err != nil {
				return "", err
			}
			d.logger.Info("imported image", "image", ref, "archive", archive, "duration", time.Since(start))
			return fmt.Sprintf("imported from %s in %s", filepath.Base(archive), since(start)), nil
		}
	}

	_, err = d.client.Pull(ctx, ref,
		client.WithPullUnpack,
		client.WithPullSnapshotter(snapshotter),
		client.WithResolver(d.registries.resolver()),
	)
	if err != nil {
		if errdefs.IsNotFound(err) {
			if msg := d.registries.notFoundMessage(ctx, ref); msg != "" {
				return "", fmt.Errorf("pull %s: %w: registry says %s (%v)", ref, driver.ErrImageNotFound, msg, err)
			}
			return "", fmt.Errorf("pull %s: %w: %v", ref, driver.ErrImageNotFound, err)
		}
		return "", fmt.Errorf("pull %s: %w", ref, err)
	}
	d.logger.Info("pulled image", "image", ref, "duration", time.Since(start))
	return fmt.Sprintf("pulled in %s", since(start)), nil
}

// since is a duration for humans: milliseconds are enough.
func since(t time.Time) time.Duration {
	return time.Since(t).Round(time.Millisecond)
}

// importArchive imports one archive and unpacks ref from it.
func (d *Driver) importArchive(ctx context.Context, archive, ref string) error {
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("image %s: %w", ref, err)
	}
	defer f.Close()
	base := archiveBase(archive)
	imgs, err := d.client.Import(ctx, f, client.WithImageRefTranslator(func(name string) string {
		return ociRefName(name, base)
	}))
	if err != nil {
		return fmt.Errorf("image %s: importing %s: %w", ref, archive, err)
	}
	for _, i := range imgs {
		if i.Name != ref {
			continue
		}
		img := client.NewImage(d.client, i)
		if err := img.Unpack(ctx, snapshotter); err != nil {
			return fmt.Errorf("image %s: unpacking after import from %s: %w", ref, archive, err)
		}
		return nil
	}
	return fmt.Errorf("image %s: %s did not hold it after import: %w", ref, archive, driver.ErrImageNotFound)
}

// findArchive returns the archive in dir that names ref, or "". Archives
// are read only as far as their index, so a directory of large images is
// searched quickly.
func findArchive(dir, ref string) (string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("image dir %s: %w", dir, err)
	}
	var tars []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".tar") {
			tars = append(tars, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(tars)
	for _, p := range tars {
		names, err := archiveNames(p)
		if err != nil {
			// One unreadable archive must not hide the others.
			continue
		}
		for _, n := range names {
			if n == ref {
				return p, nil
			}
		}
	}
	return "", nil
}

// archiveNames lists the full image names an archive holds: the docker
// format's RepoTags, or the OCI index's name annotations.
func archiveNames(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	base := archiveBase(p)
	var names []string
	// tar.Reader seeks over file bodies it is not asked for, since an
	// *os.File is an io.Seeker.
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		switch path.Clean(strings.TrimPrefix(h.Name, "./")) {
		case "index.json":
			var idx ocispec.Index
			if err := json.NewDecoder(io.LimitReader(tr, 4<<20)).Decode(&idx); err != nil {
				return nil, fmt.Errorf("%s: index.json: %w", p, err)
			}
			for _, m := range idx.Manifests {
				if n := m.Annotations[imageNameAnnotation]; n != "" {
					if full, err := normalizeRef(n); err == nil {
						names = append(names, full)
					}
					continue
				}
				if n := ociRefName(m.Annotations[ocispec.AnnotationRefName], base); n != "" {
					names = append(names, n)
				}
			}
		case "manifest.json":
			var mfst []struct{ RepoTags []string }
			if err := json.NewDecoder(io.LimitReader(tr, 4<<20)).Decode(&mfst); err != nil {
				return nil, fmt.Errorf("%s: manifest.json: %w", p, err)
			}
			for _, m := range mfst {
				for _, t := range m.RepoTags {
					if full, err := normalizeRef(t); err == nil {
						names = append(names, full)
					}
				}
			}
		}
	}
}

// ociRefName gives an OCI ref name a full image name. A full reference
// ("127.0.0.1:5000/drover/busybox:latest") stays itself; a bare tag
// ("latest", what umoci and skopeo write by default) is taken as a tag of
// the repository named like the archive file: busybox.tar + latest is
// docker.io/library/busybox:latest.
func ociRefName(name, base string) string {
	if name == "" {
		return ""
	}
	if !strings.ContainsAny(name, "/:@") {
		name = base + ":" + name
	}
	full, err := normalizeRef(name)
	if err != nil {
		return ""
	}
	return full
}

func archiveBase(p string) string {
	return strings.TrimSuffix(filepath.Base(p), ".tar")
}
