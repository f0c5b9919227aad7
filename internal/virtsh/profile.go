package virtsh

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/virtd/virtd/client"
)

// defaultProfileSeconds is how long a CPU profile samples without
// --seconds, as `go tool pprof`'s.
const defaultProfileSeconds = 30

var profileCommand = &command{
	name: "profile", help: "profile virtd or a driver",
	desc: "Take a profile of virtd's process, or of a driver's with --driver, through the admin socket, " +
		"and write it to FILE in pprof's format (read it with `go tool pprof FILE`). " +
		"A CPU profile samples for --seconds (default 30, at most 300); --heap and --kind heap, allocs " +
		"or goroutine take a snapshot instead. virtsh writes FILE itself, with your rights; virtd only sends the profile.",
	opts: []opt{
		{name: "file", kind: optString, help: "file to write the profile to", positional: true, required: true},
		{name: "driver", kind: optString, help: "profile this driver's process instead of virtd's"},
		{name: "seconds", kind: optInt, help: "how long a CPU profile samples (default 30)"},
		{name: "heap", help: "take a heap profile (same as --kind heap)"},
		{name: "kind", kind: optString, help: "cpu (the default), heap, allocs or goroutine"},
	},
	run: cmdProfile,
}

func cmdProfile(sh *shell, p *parsed) error {
	file := p.str("file")
	opts := client.ProfileOptions{Driver: p.str("driver"), Kind: client.ProfileCPU}
	if p.has("kind") {
		opts.Kind = p.str("kind")
	}
	if p.flag("heap") {
		if p.has("kind") && opts.Kind != client.ProfileHeap {
			return usagef("options --heap and --kind %s are mutually exclusive", opts.Kind)
		}
		opts.Kind = client.ProfileHeap
	}
	switch {
	case opts.Kind == client.ProfileCPU && p.has("seconds"):
		opts.Seconds = p.ints["seconds"]
	case opts.Kind == client.ProfileCPU:
		opts.Seconds = defaultProfileSeconds
	case p.has("seconds"):
		return usagef("option --seconds applies to CPU profiles only: a %s profile is a snapshot", opts.Kind)
	}

	// The file is made before the profile is asked for, so that a
	// directory that cannot take it fails at once; it gets its name only
	// once the profile is whole.
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp.*")
	if err != nil {
		return failed(unwrapPath(err), "Failed to create file '%s'", file)
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	sock, err := sh.adminSocket()
	if err != nil {
		return err
	}
	a, err := client.OpenAdmin(sh.ctx, client.WithSocket(sock))
	if err != nil {
		return failed(err, "failed to connect to the admin server")
	}
	defer a.Close()
	who := "virtd"
	if opts.Driver != "" {
		who = fmt.Sprintf("driver '%s'", opts.Driver)
	}
	if err := a.Profile(sh.ctx, opts, tmp); err != nil {
		return failed(err, "Failed to profile %s", who)
	}
	if err := tmp.Close(); err != nil {
		return failed(err, "Failed to write file '%s'", file)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return failed(unwrapPath(err), "Failed to write file '%s'", file)
	}
	keep = true
	switch {
	case opts.Kind != client.ProfileCPU:
		sh.extra("%s profile of %s written to %s\n", opts.Kind, who, file)
	case opts.Seconds == 1:
		sh.extra("CPU profile of %s over 1 second written to %s\n", who, file)
	default:
		sh.extra("CPU profile of %s over %d seconds written to %s\n", who, opts.Seconds, file)
	}
	return nil
}
