package virtsh

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/virtd/virtd/client"
	"github.com/virtd/virtd/virt"
)

// command is one row of the command table.
type command struct {
	name string
	// help is the one-line description `virtsh help` lists.
	help string
	// desc is the longer text of `virtsh help NAME`; help when empty.
	desc string
	opts []opt
	run  func(sh *shell, p *parsed) error
}

var domainOpt = opt{name: "domain", kind: optString, help: "domain name, id or uuid", positional: true, required: true}

// commands is the table of every command, in the order `help` lists them.
var commands []*command

func init() {
	commands = []*command{
		{name: "help", help: "print help", opts: []opt{{name: "command", kind: optString, help: "name of the command", positional: true}}, run: cmdHelp},
		{name: "version", help: "show version", opts: []opt{{name: "daemon", help: "report daemon version too"}}, run: cmdVersion},
		{name: "uri", help: "print the hypervisor canonical URI", run: cmdURI},
		{name: "hostname", help: "print the hypervisor hostname", run: cmdHostname},
		{name: "nodeinfo", help: "node information", run: cmdNodeinfo},
		{name: "capabilities", help: "capabilities", run: cmdCapabilities},
		{name: "list", help: "list domains", desc: "Returns list of domains; without --all only running ones.", opts: []opt{
			{name: "inactive", help: "list inactive domains"},
			{name: "all", help: "list inactive & active domains"},
			{name: "transient", help: "list transient domains"},
			{name: "persistent", help: "list persistent domains"},
			{name: "autostart", help: "list domains with autostart enabled"},
			{name: "no-autostart", help: "list domains with autostart disabled"},
			{name: "state-running", help: "list domains in running state"},
			{name: "state-paused", help: "list domains in paused state"},
			{name: "state-shutoff", help: "list domains in shutoff state"},
			{name: "state-other", help: "list domains in other states"},
			{name: "uuid", help: "list uuid's only"},
			{name: "name", help: "list domain names only"},
		}, run: cmdList},
		{name: "dominfo", help: "domain information", opts: []opt{domainOpt}, run: cmdDominfo},
		{name: "domstate", help: "domain state", opts: []opt{domainOpt, {name: "reason", help: "also print reason for the state"}}, run: cmdDomstate},
		{name: "domid", help: "convert a domain name or UUID to domain id", opts: []opt{domainOpt}, run: cmdDomid},
		{name: "domname", help: "convert a domain id or UUID to domain name", opts: []opt{domainOpt}, run: cmdDomname},
		{name: "domuuid", help: "convert a domain name or id to domain UUID", opts: []opt{domainOpt}, run: cmdDomuuid},
		{name: "dumpxml", help: "domain information in XML", opts: []opt{domainOpt, {name: "inactive", help: "show inactive defined XML"}}, run: cmdDumpxml},
		{name: "create", help: "create a domain from an XML file", desc: "Create and start a domain from an XML file without defining it: the domain is transient, and vanishes when it stops. See define.", opts: []opt{{name: "file", kind: optString, help: "file containing an XML domain description", positional: true, required: true}}, run: cmdCreate},
		{name: "define", help: "define (but don't start) a domain from an XML file", opts: []opt{{name: "file", kind: optString, help: "file containing an XML domain description", positional: true, required: true}}, run: cmdDefine},
		{name: "undefine", help: "undefine a domain", desc: "Undefine an inactive domain, or convert a running domain to transient.", opts: []opt{domainOpt}, run: cmdUndefine},
		{name: "start", help: "start a (previously defined) inactive domain", opts: []opt{domainOpt}, run: domainAction("Failed to start domain '%s'", "Domain '%s' started", (*client.Domain).Start)},
		{name: "shutdown", help: "gracefully shutdown a domain", desc: "Ask the guest to power off (ACPI); the guest may take its time or ignore it.", opts: []opt{domainOpt}, run: domainAction("Failed to shutdown domain '%s'", "Domain '%s' is being shutdown", (*client.Domain).Shutdown)},
		{name: "reboot", help: "reboot a domain", opts: []opt{domainOpt}, run: domainAction("Failed to reboot domain '%s'", "Domain '%s' is being rebooted", (*client.Domain).Reboot)},
		{name: "destroy", help: "destroy (stop) a domain", desc: "Power the domain off at once, like pulling the plug. The definition stays; see undefine.", opts: []opt{domainOpt}, run: domainAction("Failed to destroy domain '%s'", "Domain '%s' destroyed", (*client.Domain).Destroy)},
		{name: "suspend", help: "suspend a domain", desc: "Pause the domain's CPUs; its memory stays allocated.", opts: []opt{domainOpt}, run: domainAction("Failed to suspend domain '%s'", "Domain '%s' suspended", (*client.Domain).Suspend)},
		{name: "resume", help: "resume a domain", opts: []opt{domainOpt}, run: domainAction("Failed to resume domain '%s'", "Domain '%s' resumed", (*client.Domain).Resume)},
		{name: "autostart", help: "autostart a domain", desc: "Configure a domain to be started when its driver starts.", opts: []opt{domainOpt, {name: "disable", help: "disable autostarting"}}, run: cmdAutostart},
		{name: "domxml-to-native", help: "convert domain XML to a native guest configuration", desc: "Formats depend on the driver: qemu-argv (qemu), xen-xl (xen).", opts: []opt{
			{name: "format", kind: optString, help: "target config data type format", positional: true, required: true},
			{name: "xml", kind: optString, help: "file containing an XML domain description", positional: true, required: true},
		}, run: cmdToNative},
		{name: "domxml-from-native", help: "convert a native guest configuration to domain XML", desc: "Formats depend on the driver: lxc-tools (lxc), xen-xl (xen). virtd converts only the text it is sent: for lxc-tools, virtsh reads the files the configuration names for their content (lxc.include, lxc.mount.fstab) itself, with your rights, and sends their lines in their place.", opts: []opt{
			{name: "format", kind: optString, help: "source config data format", positional: true, required: true},
			{name: "config", kind: optString, help: "file containing the native config", positional: true, required: true},
		}, run: cmdFromNative},
		{name: "console", help: "connect to the guest console", desc: "Attach the terminal to the domain's console; Ctrl+] detaches.", opts: []opt{
			domainOpt,
			{name: "devname", kind: optString, help: "character device name"},
		}, run: cmdConsole},
		{name: "event", help: "Domain Events", desc: "List event types, or wait for domain events to occur.", opts: []opt{
			{name: "domain", kind: optString, help: "filter by domain name, id or uuid", positional: true},
			{name: "event", kind: optString, help: "which event type to wait for"},
			{name: "all", help: "wait for all events instead of just one type"},
			{name: "loop", help: "loop until timeout or interrupt, rather than one-shot"},
			{name: "timeout", kind: optInt, help: "timeout seconds"},
			{name: "list", help: "list valid event types"},
			{name: "timestamp", help: "show timestamp for each printed event"},
		}, run: cmdEvent},
		{name: "drivers", help: "list installed virtd drivers", desc: "List the drivers installed in virtd, through its admin socket, with the files it refused.", opts: []opt{
			{name: "rescan", help: "rescan the driver directories first"},
		}, run: cmdDrivers},
		profileCommand,
	}
	commands = append(commands, statsCommands...)
}

func lookupCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (sh *shell) runCommand(name string, args []string) error {
	c := lookupCommand(name)
	if c == nil {
		return usagef("unknown command: '%s'", name)
	}
	p, err := c.parse(args)
	if err != nil {
		return err
	}
	return c.run(sh, p)
}

func (sh *shell) printHelp() {
	sh.printf("virtsh [options]... <command> [args...]\n\n")
	sh.printf("  options:\n")
	sh.printf("    -c | --connect=URI      hypervisor connection URI (default %s, or $%s)\n", DefaultURI, URIEnv)
	sh.printf("    -h | --help             this help\n")
	sh.printf("    -q | --quiet            quiet mode\n")
	sh.printf("    -r | --readonly         connect readonly\n")
	sh.printf("    -v | --version          program version\n\n")
	sh.printf("  commands (run 'virtsh help <command>' for details):\n")
	for _, c := range commands {
		sh.printf("    %-16s %s\n", c.name, c.help)
	}
}

func cmdHelp(sh *shell, p *parsed) error {
	name := p.str("command")
	if name == "" {
		sh.printHelp()
		return nil
	}
	c := lookupCommand(name)
	if c == nil {
		return usagef("command '%s' doesn't exist", name)
	}
	desc := c.desc
	if desc == "" {
		desc = c.help + "."
	}
	synopsis := c.name
	for _, o := range c.opts {
		s := "--" + o.name
		switch {
		case o.positional:
			s = "[--" + o.name + "] <" + o.name + ">"
		case o.kind != optBool:
			s += " <" + o.name + ">"
		}
		if o.kind == optArgv {
			s += "..."
		}
		if !o.required {
			s = "[" + s + "]"
		}
		synopsis += " " + s
	}
	sh.printf("  NAME\n    %s - %s\n\n  SYNOPSIS\n    %s\n\n  DESCRIPTION\n    %s\n", c.name, c.help, synopsis, desc)
	if len(c.opts) > 0 {
		sh.printf("\n  OPTIONS\n")
		for _, o := range c.opts {
			s := "--" + o.name
			switch {
			case o.positional:
				s = "[--" + o.name + "] <" + o.name + ">"
			case o.kind != optBool:
				s += " <" + o.name + ">"
			}
			sh.printf("    %-22s %s\n", s, o.help)
		}
	}
	return nil
}

func cmdVersion(sh *shell, p *parsed) error {
	c, err := sh.connect()
	if err != nil {
		return err
	}
	v, err := c.Version(sh.ctx)
	if err != nil {
		return failed(err, "failed to get the hypervisor version")
	}
	sh.printf("Compiled against library: virtd %s\n", client.LibraryVersion)
	sh.printf("Using library: virtd %s\n", client.LibraryVersion)
	sh.printf("Using API: %s %s\n", v.HypervisorType, v.Driver)
	if v.Hypervisor != 0 {
		sh.printf("Running hypervisor: %s %s\n", v.HypervisorType, client.FormatVersion(v.Hypervisor))
	}
	if p.flag("daemon") {
		sh.printf("Running against daemon: %s\n", v.Daemon)
	}
	return nil
}

func cmdURI(sh *shell, _ *parsed) error {
	c, err := sh.connect()
	if err != nil {
		return err
	}
	sh.printf("%s\n", c.URI())
	return nil
}

func cmdHostname(sh *shell, _ *parsed) error {
	c, err := sh.connect()
	if err != nil {
		return err
	}
	h, err := c.Hostname(sh.ctx)
	if err != nil {
		return failed(err, "failed to get hostname")
	}
	sh.printf("%s\n", h)
	return nil
}

func cmdNodeinfo(sh *shell, _ *parsed) error {
	c, err := sh.connect()
	if err != nil {
		return err
	}
	n, err := c.NodeInfo(sh.ctx)
	if err != nil {
		return failed(err, "failed to get node information")
	}
	for _, l := range [][2]string{
		{"CPU model:", n.Model},
		{"CPU(s):", fmt.Sprint(n.CPUs)},
		{"CPU frequency:", fmt.Sprintf("%d MHz", n.MHz)},
		{"CPU socket(s):", fmt.Sprint(n.Sockets)},
		{"Core(s) per socket:", fmt.Sprint(n.Cores)},
		{"Thread(s) per core:", fmt.Sprint(n.Threads)},
		{"NUMA cell(s):", fmt.Sprint(n.Nodes)},
		{"Memory size:", fmt.Sprintf("%d KiB", n.MemoryKiB)},
	} {
		sh.printf("%-20s %s\n", l[0], l[1])
	}
	return nil
}

func cmdCapabilities(sh *shell, _ *parsed) error {
	c, err := sh.connect()
	if err != nil {
		return err
	}
	x, err := c.Capabilities(sh.ctx)
	if err != nil {
		return failed(err, "failed to get capabilities")
	}
	sh.printf("%s", withNewline(x))
	return nil
}

func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		return s + "\n"
	}
	return s
}

func cmdList(sh *shell, p *parsed) error {
	var flags virt.ListFlags
	bits := []struct {
		opt  string
		flag virt.ListFlags
	}{
		{"persistent", virt.ListPersistent}, {"transient", virt.ListTransient},
		{"autostart", virt.ListAutostart}, {"no-autostart", virt.ListNoAutostart},
		{"state-running", virt.ListRunning}, {"state-paused", virt.ListPaused},
		{"state-shutoff", virt.ListShutoff}, {"state-other", virt.ListOther},
	}
	for _, b := range bits {
		if p.flag(b.opt) {
			flags |= b.flag
		}
	}
	stateFilter := flags&(virt.ListRunning|virt.ListPaused|virt.ListShutoff|virt.ListOther) != 0
	switch {
	case p.flag("all"):
	case p.flag("inactive"):
		flags |= virt.ListInactive
	case !stateFilter:
		// Like virsh: without --all only running domains are listed; a
		// state filter says which states it wants by itself.
		flags |= virt.ListActive
	}
	c, err := sh.connect()
	if err != nil {
		return err
	}
	domains, err := c.ListDomains(sh.ctx, flags)
	if err != nil {
		return failed(err, "failed to list domains")
	}
	snaps := make([]virt.Domain, len(domains))
	for i, d := range domains {
		snaps[i] = d.Snapshot()
	}
	// Running domains by ID first, then the others by name, as virsh does.
	sort.SliceStable(snaps, func(i, j int) bool {
		a, b := snaps[i], snaps[j]
		if (a.ID >= 0) != (b.ID >= 0) {
			return a.ID >= 0
		}
		if a.ID >= 0 && a.ID != b.ID {
			return a.ID < b.ID
		}
		return a.Name < b.Name
	})
	switch {
	case p.flag("uuid") && p.flag("name"):
		for _, d := range snaps {
			sh.printf("%s  %s\n", d.UUID, d.Name)
		}
	case p.flag("uuid"):
		for _, d := range snaps {
			sh.printf("%s\n", d.UUID)
		}
	case p.flag("name"):
		for _, d := range snaps {
			sh.printf("%s\n", d.Name)
		}
	default:
		rows := make([][]string, 0, len(snaps))
		for _, d := range snaps {
			rows = append(rows, []string{idString(d.ID), d.Name, d.State.String()})
		}
		writeTable(sh.stdout, []string{"Id", "Name", "State"}, rows)
	}
	return nil
}

func idString(id int32) string {
	if id < 0 {
		return "-"
	}
	return strconv.Itoa(int(id))
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// lookupDomain finds a domain the way virsh does: by ID when the argument
// is a number, then by UUID when it looks like one, then by name.
func (sh *shell) lookupDomain(arg string) (*client.Domain, error) {
	c, err := sh.connect()
	if err != nil {
		return nil, err
	}
	fail := func(err error) error { return failed(err, "failed to get domain '%s'", arg) }
	if id, err := strconv.ParseInt(arg, 10, 32); err == nil && id >= 0 {
		d, err := c.LookupByID(sh.ctx, int32(id))
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, client.ErrNotFound) {
			return nil, fail(err)
		}
	}
	if uuidRE.MatchString(arg) {
		d, err := c.LookupByUUID(sh.ctx, arg)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, client.ErrNotFound) {
			return nil, fail(err)
		}
	}
	d, err := c.LookupByName(sh.ctx, arg)
	if err != nil {
		return nil, fail(err)
	}
	return d, nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func cmdDominfo(sh *shell, p *parsed) error {
	d, err := sh.lookupDomain(p.str("domain"))
	if err != nil {
		return err
	}
	info, err := d.Info(sh.ctx)
	if err != nil {
		return failed(err, "failed to get information for domain '%s'", d.Name())
	}
	snap := d.Snapshot()
	line := func(k, v string) { sh.printf("%-15s %s\n", k, v) }
	line("Id:", idString(snap.ID))
	line("Name:", d.Name())
	line("UUID:", d.UUID())
	if x, err := d.XML(sh.ctx, false); err == nil {
		if t := osType(x); t != "" {
			line("OS Type:", t)
		}
	}
	line("State:", info.State.String())
	line("CPU(s):", fmt.Sprint(info.VCPUs))
	if info.CPUTime != 0 {
		line("CPU time:", fmt.Sprintf("%.1fs", info.CPUTime.Seconds()))
	}
	line("Max memory:", fmt.Sprintf("%d KiB", info.MaxMemoryKiB))
	line("Used memory:", fmt.Sprintf("%d KiB", info.MemoryKiB))
	line("Persistent:", yesNo(snap.Persistent))
	autostart, err := d.Autostart(sh.ctx)
	if err == nil {
		v := "disable"
		if autostart {
			v = "enable"
		}
		line("Autostart:", v)
	}
	line("Managed save:", "no")
	return nil
}

// osType reads <os><type> from domain XML ("hvm", "exe").
func osType(x string) string {
	var dom struct {
		OS struct {
			Type string `xml:"type"`
		} `xml:"os"`
	}
	if xml.Unmarshal([]byte(x), &dom) != nil {
		return ""
	}
	return strings.TrimSpace(dom.OS.Type)
}

func cmdDomstate(sh *shell, p *parsed) error {
	d, err := sh.lookupDomain(p.str("domain"))
	if err != nil {
		return err
	}
	st, reason, err := d.State(sh.ctx)
	if err != nil {
		return failed(err, "failed to get state of domain '%s'", d.Name())
	}
	if p.flag("reason") {
		sh.printf("%s (%s)\n", st, virt.ReasonString(st, reason))
	} else {
		sh.printf("%s\n", st)
	}
	return nil
}

func cmdDomid(sh *shell, p *parsed) error {
	d, err := sh.lookupDomain(p.str("domain"))
	if err != nil {
		return err
	}
	sh.printf("%s\n", idString(d.ID()))
	return nil
}

func cmdDomname(sh *shell, p *parsed) error {
	d, err := sh.lookupDomain(p.str("domain"))
	if err != nil {
		return err
	}
	sh.printf("%s\n", d.Name())
	return nil
}

func cmdDomuuid(sh *shell, p *parsed) error {
	d, err := sh.lookupDomain(p.str("domain"))
	if err != nil {
		return err
	}
	sh.printf("%s\n", d.UUID())
	return nil
}

func cmdDumpxml(sh *shell, p *parsed) error {
	d, err := sh.lookupDomain(p.str("domain"))
	if err != nil {
		return err
	}
	x, err := d.XML(sh.ctx, p.flag("inactive"))
	if err != nil {
		return failed(err, "failed to get XML of domain '%s'", d.Name())
	}
	sh.printf("%s", withNewline(x))
	return nil
}

func cmdDefine(sh *shell, p *parsed) error {
	file := p.str("file")
	data, err := os.ReadFile(file)
	if err != nil {
		return usagef("Failed to read file '%s' to define domain: %v", file, unwrapPath(err))
	}
	c, err := sh.connect()
	if err != nil {
		return err
	}
	d, err := c.DefineXML(sh.ctx, string(data))
	if err != nil {
		return failed(err, "Failed to define domain from %s", file)
	}
	sh.extra("Domain '%s' defined from %s\n", d.Name(), file)
	return nil
}

func cmdCreate(sh *shell, p *parsed) error {
	file := p.str("file")
	data, err := os.ReadFile(file)
	if err != nil {
		return usagef("Failed to read file '%s' to create domain: %v", file, unwrapPath(err))
	}
	c, err := sh.connect()
	if err != nil {
		return err
	}
	d, err := c.CreateXML(sh.ctx, string(data))
	if err != nil {
		return failed(err, "Failed to create domain from %s", file)
	}
	sh.extra("Domain '%s' created from %s\n", d.Name(), file)
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func cmdUndefine(sh *shell, p *parsed) error {
	d, err := sh.lookupDomain(p.str("domain"))
	if err != nil {
		return err
	}
	if err := d.Undefine(sh.ctx); err != nil {
		return failed(err, "Failed to undefine domain '%s'", d.Name())
	}
	sh.extra("Domain '%s' has been undefined\n", d.Name())
	return nil
}

// domainAction makes the run function of a command that does one thing to
// one domain and says so.
func domainAction(failure, success string, do func(*client.Domain, context.Context) error) func(*shell, *parsed) error {
	return func(sh *shell, p *parsed) error {
		d, err := sh.lookupDomain(p.str("domain"))
		if err != nil {
			return err
		}
		if err := do(d, sh.ctx); err != nil {
			return failed(err, failure, d.Name())
		}
		sh.extra(success+"\n", d.Name())
		return nil
	}
}

func cmdAutostart(sh *shell, p *parsed) error {
	d, err := sh.lookupDomain(p.str("domain"))
	if err != nil {
		return err
	}
	enable := !p.flag("disable")
	if err := d.SetAutostart(sh.ctx, enable); err != nil {
		if enable {
			return failed(err, "Failed to mark domain '%s' as autostarted", d.Name())
		}
		return failed(err, "Failed to unmark domain '%s' as autostarted", d.Name())
	}
	if enable {
		sh.extra("Domain '%s' marked as autostarted\n", d.Name())
	} else {
		sh.extra("Domain '%s' unmarked as autostarted\n", d.Name())
	}
	return nil
}

// eventTypes are the event types `event --list` prints: the ones virtd's
// drivers send.
var eventTypes = []string{"lifecycle", "reboot"}

func cmdEvent(sh *shell, p *parsed) error {
	if p.flag("list") {
		for _, t := range eventTypes {
			sh.printf("%s\n", t)
		}
		return nil
	}
	only := p.str("event")
	if only != "" && !slices.Contains(eventTypes, only) {
		return usagef("unknown event type %s", only)
	}
	if p.str("event") == "" && !p.flag("all") {
		return usagef("one of --list, --all, or --event <type> is required")
	}
	c, err := sh.connect()
	if err != nil {
		return err
	}
	var uuid string
	if p.has("domain") {
		d, err := sh.lookupDomain(p.str("domain"))
		if err != nil {
			return err
		}
		uuid = d.UUID()
	}
	ctx, cancel := context.WithCancel(sh.ctx)
	defer cancel()
	if p.has("timeout") {
		var tcancel context.CancelFunc
		ctx, tcancel = context.WithTimeout(ctx, time.Duration(p.ints["timeout"])*time.Second)
		defer tcancel()
	}
	stream, err := c.WatchEvents(ctx)
	if err != nil {
		return failed(err, "failed to register event")
	}
	count, stopped := 0, false
	for ev := range stream.Events() {
		kind := "lifecycle"
		if ev.Type == virt.EventReboot {
			kind = "reboot"
		}
		if (uuid != "" && ev.Domain.UUID != uuid) || (only != "" && kind != only) {
			continue
		}
		if p.flag("timestamp") {
			t := ev.Time
			if t.IsZero() {
				t = time.Now()
			}
			sh.printf("%s: ", t.Format("2006-01-02 15:04:05.000-0700"))
		}
		if kind == "reboot" {
			sh.printf("event 'reboot' for domain '%s'\n", ev.Domain.Name)
		} else {
			sh.printf("event 'lifecycle' for domain '%s': %s %s\n", ev.Domain.Name, ev.Type, virt.EventDetailString(ev.Type, ev.Detail))
		}
		count++
		if !p.flag("loop") {
			stopped = true
			cancel()
			break
		}
	}
	if err := stream.Err(); err != nil {
		return failed(err, "event stream ended")
	}
	// Not stopped by the caller nor after the first event: the timeout.
	if count == 0 && !stopped && p.has("timeout") && sh.ctx.Err() == nil {
		sh.printf("event loop timed out\n")
	}
	sh.printf("events received: %d\n", count)
	return nil
}

// adminSocket is the default admin socket, or the one next to the socket
// named by the URI's ?socket= parameter.
func (sh *shell) adminSocket() (string, error) {
	u, err := client.ParseURI(sh.uri)
	if err != nil {
		return "", err
	}
	if u.Socket != "" {
		return filepath.Join(filepath.Dir(u.Socket), client.AdminSocketName), nil
	}
	return client.DefaultAdminSocket(), nil
}

func cmdDrivers(sh *shell, p *parsed) error {
	sock, err := sh.adminSocket()
	if err != nil {
		return err
	}
	a, err := client.OpenAdmin(sh.ctx, client.WithSocket(sock))
	if err != nil {
		return failed(err, "failed to connect to the admin server")
	}
	defer a.Close()
	if p.flag("rescan") {
		r, err := a.Rescan(sh.ctx)
		if err != nil {
			return failed(err, "failed to rescan the driver directories")
		}
		sh.printRescan(r)
	}
	l, err := a.Drivers(sh.ctx)
	if err != nil {
		return failed(err, "failed to list drivers")
	}
	sh.printDrivers(l)
	return nil
}

// printRescan says what a rescan found.
func (sh *shell) printRescan(r *client.RescanResult) {
	for _, n := range r.Added {
		sh.printf("Driver '%s' added\n", n)
	}
	for _, n := range r.Removed {
		sh.printf("Driver '%s' removed\n", n)
	}
	if len(r.Added)+len(r.Removed) == 0 {
		sh.printf("No driver added or removed\n")
	}
	sh.printf("\n")
}

// printDrivers prints the table of drivers, the rejected files and the
// directories searched.
func (sh *shell) printDrivers(l *client.DriverList) {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	rows := make([][]string, 0, len(l.Drivers))
	for _, d := range l.Drivers {
		health := dash(d.Health)
		if d.HealthReason != "" {
			health += " (" + d.HealthReason + ")"
		}
		pid := "-"
		if d.PID != 0 {
			pid = strconv.FormatInt(d.PID, 10)
		}
		rows = append(rows, []string{
			d.Name, dash(d.State), health, pid, strconv.Itoa(int(d.Restarts)),
			strconv.Itoa(int(d.APIVersion)), dash(d.Version), dash(d.Path), dash(d.LastError),
		})
	}
	writeTable(sh.stdout, []string{"Name", "State", "Health", "PID", "Restarts", "API", "Version", "Path", "Last error"}, rows)
	if len(l.Rejected) > 0 {
		sh.printf("\nRejected files:\n")
		for _, r := range l.Rejected {
			sh.printf("  %s: %s\n", r.Path, r.Reason)
		}
	}
	if len(l.Directories) > 0 {
		sh.printf("\nSearched: %s\n", strings.Join(l.Directories, ", "))
	}
}
