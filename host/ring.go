package host

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
)

// ring keeps the last lines written to it: a driver's last stderr lines,
// quoted when the driver fails.
type ring struct {
	mu    sync.Mutex
	max   int
	lines []string
	part  []byte
}

func newRing(max int) *ring { return &ring{max: max} }

func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.part = append(r.part, p...)
	for {
		i := bytes.IndexByte(r.part, '\n')
		if i < 0 {
			break
		}
		r.add(string(r.part[:i]))
		r.part = r.part[i+1:]
	}
	return len(p), nil
}

func (r *ring) add(line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	// Drivers log JSON through hclog; keep the message, not the framing.
	var entry struct {
		Level   string `json:"@level"`
		Message string `json:"@message"`
	}
	if json.Unmarshal([]byte(line), &entry) == nil && entry.Message != "" {
		if entry.Level == "trace" || entry.Level == "debug" {
			return
		}
		line = entry.Level + ": " + entry.Message
	}
	if len(line) > 300 {
		line = line[:300] + "..."
	}
	r.lines = append(r.lines, line)
	if len(r.lines) > r.max {
		r.lines = r.lines[len(r.lines)-r.max:]
	}
}

// Lines returns the kept lines, oldest first, and a partial last line.
func (r *ring) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]string(nil), r.lines...)
	if s := strings.TrimSpace(string(r.part)); s != "" {
		out = append(out, s)
	}
	return out
}

// quote renders the last lines for an error message.
func (r *ring) quote() string {
	lines := r.Lines()
	if len(lines) == 0 {
		return "no output on stderr"
	}
	return "last stderr: " + strings.Join(lines, " | ")
}
