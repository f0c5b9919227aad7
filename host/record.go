package host

import (
	"encoding/json"
	"os"

	"github.com/virtd/virtd/internal/atomicfile"
)

// record is what the host keeps under the run directory about a running
// driver, so that a restarted daemon can reattach to it.
type record struct {
	Name       string `json:"name"`
	Path       string `json:"path"`
	PID        int    `json:"pid"`
	StartTime  uint64 `json:"start_time"`
	Network    string `json:"network"`
	Addr       string `json:"addr"`
	APIVersion int    `json:"api_version"`
	InstanceID string `json:"instance_id"`
}

func readRecord(path string) (*record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func writeRecord(path string, r *record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Replace(path, append(b, '\n'), 0o600)
}
