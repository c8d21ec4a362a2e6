//go:build e2e

package e2e

import "os"

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }
