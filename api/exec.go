package api

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// ExecProtocol is the Upgrade token of `alloc exec`: after a 101 answer the
// connection carries frames both ways. A frame is one type byte, a 4-byte
// big-endian payload length, then the payload.
const ExecProtocol = "drover-exec/1"

// Exec frame types.
const (
	ExecStdin      byte = 'i' // client -> task: stdin bytes
	ExecStdinClose byte = 'c' // client -> task: stdin ended
	ExecResize     byte = 'r' // client -> task: width, height (2 x uint16)
	ExecStdout     byte = 'o' // task -> client
	ExecStderr     byte = 'e' // task -> client
	ExecExit       byte = 'x' // task -> client, last frame: ExecResult JSON
)

// maxExecFrame bounds a frame's payload, so a bad peer cannot make the
// other side allocate without limit.
const maxExecFrame = 1 << 20

// ExecResult ends an exec session.
type ExecResult struct {
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error,omitempty"`
}

// WriteExecFrame writes one frame.
func WriteExecFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > maxExecFrame {
		return fmt.Errorf("exec frame of %d bytes is larger than %d", len(payload), maxExecFrame)
	}
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// ReadExecFrame reads one frame; the payload is only valid until the next
// call with the same buffer.
func ReadExecFrame(r *bufio.Reader, buf []byte) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxExecFrame {
		return 0, nil, fmt.Errorf("exec frame of %d bytes is larger than %d", n, maxExecFrame)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return hdr[0], buf, nil
}

// EncodeResize is the payload of an ExecResize frame.
func EncodeResize(width, height uint16) []byte {
	var b [4]byte
	binary.BigEndian.PutUint16(b[:2], width)
	binary.BigEndian.PutUint16(b[2:], height)
	return b[:]
}

// DecodeResize reads an ExecResize payload.
func DecodeResize(p []byte) (width, height uint16, err error) {
	if len(p) != 4 {
		return 0, 0, fmt.Errorf("resize frame of %d bytes, want 4", len(p))
	}
	return binary.BigEndian.Uint16(p[:2]), binary.BigEndian.Uint16(p[2:]), nil
}

// ExecOptions say what to run in an allocation's task and where its
// streams go.
type ExecOptions struct {
	Task    string // empty: the group's only task
	Command []string
	TTY     bool
	Stdin   io.Reader // nil: no input
	Stdout  io.Writer
	Stderr  io.Writer
	// Resize carries terminal size changes; the first one should be sent
	// at once when TTY is set.
	Resize <-chan [2]uint16
}

// Exec runs a command inside an allocation's task, wherever it runs (the
// agent proxies to the client that has it), and returns its exit code.
func (a *Allocations) Exec(ctx context.Context, allocID string, opts *ExecOptions) (int, error) {
	if len(opts.Command) == 0 {
		return 0, errors.New("exec: no command")
	}
	cmd, err := json.Marshal(opts.Command)
	if err != nil {
		return 0, err
	}
	r := a.c.newRequest(http.MethodGet, "/client/allocation/"+escape(allocID)+"/exec")
	r.setQuery(nil, a.c.config.Namespace)
	r.params.Set("command", string(cmd))
	r.params.Set("tty", strconv.FormatBool(opts.TTY))
	if opts.Task != "" {
		r.params.Set("task", opts.Task)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.c.url(r), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", ExecProtocol)
	if a.c.config.Token != "" {
		req.Header.Set(HeaderToken, a.c.config.Token)
	}
	resp, err := a.c.http.Do(req)
	if err != nil {
		return 0, a.c.transportError(ctx, r, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer closeBody(resp)
		if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
			return 0, fmt.Errorf("exec: agent answered %s instead of switching to %s", resp.Status, ExecProtocol)
		}
		return 0, decodeError(resp)
	}
	conn, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return 0, errors.New("exec: the upgraded connection is not writable")
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	return runExecSession(conn, opts)
}

// runExecSession pumps stdin and resizes out and output in until the exit
// frame arrives.
func runExecSession(conn io.ReadWriteCloser, opts *ExecOptions) (int, error) {
	var wmu sync.Mutex
	send := func(typ byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return WriteExecFrame(conn, typ, p)
	}
	done := make(chan struct{})
	defer close(done)
	if opts.Stdin != nil {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := opts.Stdin.Read(buf)
				if n > 0 {
					if send(ExecStdin, buf[:n]) != nil {
						return
					}
				}
				if err != nil {
					send(ExecStdinClose, nil)
					return
				}
			}
		}()
	} else {
		if err := send(ExecStdinClose, nil); err != nil {
			return 0, err
		}
	}
	if opts.Resize != nil {
		go func() {
			for {
				select {
				case <-done:
					return
				case sz, ok := <-opts.Resize:
					if !ok {
						return
					}
					if send(ExecResize, EncodeResize(sz[0], sz[1])) != nil {
						return
					}
				}
			}
		}()
	}
	br := bufio.NewReaderSize(conn, 32<<10)
	var buf []byte
	for {
		typ, p, err := ReadExecFrame(br, buf)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return 0, errors.New("exec: connection closed before the command's exit status arrived")
			}
			return 0, fmt.Errorf("exec: %w", err)
		}
		buf = p[:0]
		switch typ {
		case ExecStdout:
			if opts.Stdout != nil {
				opts.Stdout.Write(p)
			}
		case ExecStderr:
			if opts.Stderr != nil {
				opts.Stderr.Write(p)
			}
		case ExecExit:
			var res ExecResult
			if err := json.Unmarshal(p, &res); err != nil {
				return 0, fmt.Errorf("exec: bad exit frame: %w", err)
			}
			if res.Error != "" {
				return res.ExitCode, errors.New(res.Error)
			}
			return res.ExitCode, nil
		}
	}
}
