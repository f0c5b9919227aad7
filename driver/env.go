package driver

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/virt"
)

// Env is what a driver learns from the host that launched it. Serve reads
// it from the process environment once (ParseEnv) and hands it to the
// driver's constructor; a test builds one by hand. A driver reads no
// environment variable of its own for these.
type Env struct {
	// The driver's own directories (EnvConfigDir, EnvStateDir, EnvRunDir,
	// EnvLogDir), which the host creates before launch.
	ConfigDir, StateDir, RunDir, LogDir string
	// LogFile, when not empty, receives a copy of the driver's log
	// (EnvLogFile).
	LogFile string
	// LogLevel is the driver's log level (EnvLogLevel).
	LogLevel hclog.Level
	// Logger is the driver's logger, made by Serve. Nil in an Env made by
	// hand: the driver then logs nowhere.
	Logger hclog.Logger
	// MaxMessageSize bounds every message the driver sends or receives
	// (EnvMaxMessageSize).
	MaxMessageSize int
	// OrphanTimeout is how long the driver lives on with no host in
	// contact and no running guest; zero for ever (EnvOrphanTimeout).
	OrphanTimeout time.Duration
	// GCPercent is Go's garbage collection percent for the driver
	// process (EnvGCPercent), which Serve sets.
	GCPercent int
	// MaxProcs bounds the driver's GOMAXPROCS governor (EnvMaxProcs);
	// zero for every CPU.
	MaxProcs int
}

// ParseEnv reads the Env a host gives through getenv (os.Getenv in
// Serve), leaving Logger nil. The directories must be set; the log file
// may be empty; the log level defaults to info, the message size to
// DefaultMaxMessageSize, the GC percent to DefaultGCPercent, the bound
// of GOMAXPROCS to every CPU and the
// orphan timeout to none. Each missing or invalid variable is named in the
// error, an invalid argument.
func ParseEnv(getenv func(string) string) (Env, error) {
	env := Env{LogLevel: hclog.Info, MaxMessageSize: DefaultMaxMessageSize, GCPercent: DefaultGCPercent, LogFile: getenv(EnvLogFile)}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s %s: %w", name, fmt.Sprintf(format, args...), virt.ErrInvalidArgument))
	}
	for _, dir := range []struct {
		name string
		to   *string
	}{
		{EnvConfigDir, &env.ConfigDir}, {EnvStateDir, &env.StateDir},
		{EnvRunDir, &env.RunDir}, {EnvLogDir, &env.LogDir},
	} {
		if *dir.to = getenv(dir.name); *dir.to == "" {
			bad(dir.name, "is not set (virtd sets it when it launches a driver)")
		}
	}
	if v := getenv(EnvLogLevel); v != "" {
		if env.LogLevel = hclog.LevelFromString(v); env.LogLevel == hclog.NoLevel {
			bad(EnvLogLevel, "%q is not a log level (trace, debug, info, warn, error or off)", v)
		}
	}
	if v := getenv(EnvMaxMessageSize); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			bad(EnvMaxMessageSize, "%q is not a positive number of bytes", v)
		}
		env.MaxMessageSize = n
	}
	if v := getenv(EnvGCPercent); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			bad(EnvGCPercent, "%q is not a positive percentage", v)
		}
		env.GCPercent = n
	}
	if v := getenv(EnvMaxProcs); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			bad(EnvMaxProcs, "%q is not a positive number of threads", v)
		}
		env.MaxProcs = n
	}
	if v := getenv(EnvOrphanTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			bad(EnvOrphanTimeout, "%q is not a duration of zero or more (such as 5m)", v)
		}
		env.OrphanTimeout = d
	}
	if len(errs) > 0 {
		return Env{}, errors.Join(errs...)
	}
	return env, nil
}
