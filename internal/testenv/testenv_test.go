package testenv

import (
	"fmt"
	"os"
	"runtime"
	"testing"
)

// recorder is a testing.TB that records how it was stopped instead of
// stopping a test. Like the real one, Skip and Fatal end the goroutine
// that calls them.
type recorder struct {
	testing.TB // nil: a method not overridden here panics
	calls      []string
}

func (r *recorder) Helper() {}

func (r *recorder) stop(kind string, args ...any) {
	r.calls = append(r.calls, kind+": "+fmt.Sprint(args...))
	runtime.Goexit()
}

func (r *recorder) Skip(args ...any)  { r.stop("skip", args...) }
func (r *recorder) Fatal(args ...any) { r.stop("fatal", args...) }
func (r *recorder) Skipf(format string, args ...any) {
	r.stop("skip", fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.stop("fatal", fmt.Sprintf(format, args...))
}
func (r *recorder) SkipNow()                          { r.stop("skip") }
func (r *recorder) FailNow()                          { r.stop("fatal") }
func (r *recorder) Fail()                             { r.calls = append(r.calls, "fail") }
func (r *recorder) Error(args ...any)                 { r.calls = append(r.calls, "error: "+fmt.Sprint(args...)) }
func (r *recorder) Errorf(format string, args ...any) { r.Error(fmt.Sprintf(format, args...)) }

// run calls f with a recorder on a goroutine of its own and reports what
// it recorded and whether f returned (rather than being stopped).
func run(f func(testing.TB)) (calls []string, returned bool) {
	r := &recorder{}
	done := make(chan bool)
	go func() {
		ret := false
		defer func() { done <- ret }()
		f(r)
		ret = true
	}()
	returned = <-done
	return r.calls, returned
}

func TestMissingAndNeed(t *testing.T) {
	const reason = "qemu-system-x86_64 is not installed"
	for _, tc := range []struct {
		name     string
		ci       *string // nil: unset
		ok       bool    // for Need
		want     string  // the one call recorded; "" for none
		returned bool
	}{
		{name: "developer machine, missing", want: "skip: " + reason},
		{name: "CI empty counts as unset", ci: ptr(""), want: "skip: " + reason},
		{name: "CI, missing", ci: ptr("true"), want: "fatal: " + reason + " (CI must have it)"},
		{name: "CI=1, missing", ci: ptr("1"), want: "fatal: " + reason + " (CI must have it)"},
		{name: "developer machine, present", ok: true, returned: true},
		{name: "CI, present", ci: ptr("true"), ok: true, returned: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(CIVariable, "")
			if tc.ci == nil {
				os.Unsetenv(CIVariable) // t.Setenv restores it
			} else {
				t.Setenv(CIVariable, *tc.ci)
			}
			check := func(fn string, calls []string, returned bool) {
				t.Helper()
				var want []string
				if tc.want != "" {
					want = []string{tc.want}
				}
				if fmt.Sprint(calls) != fmt.Sprint(want) || returned != tc.returned {
					t.Errorf("%s: recorded %q and returned=%v; want %q and returned=%v", fn, calls, returned, want, tc.returned)
				}
			}
			calls, returned := run(func(t testing.TB) { Need(t, tc.ok, reason) })
			check("Need", calls, returned)
			if !tc.ok {
				calls, returned = run(func(t testing.TB) { Missing(t, reason) })
				check("Missing", calls, returned)
			}
		})
	}
}

func ptr(s string) *string { return &s }
