package virtsh

import (
	"github.com/virtd/virtd/client"
	"github.com/virtd/virtd/virt"
)

// statsCommands read statistics and domain capabilities; their output is
// virsh's.
var statsCommands = []*command{
	{name: "domstats", help: "get statistics about one or multiple domains",
		desc: "Gets statistics about one or more (or all) domains. Without a group option, every group the driver has; " +
			"without a domain, every domain that passes the --list-* filters.",
		opts: []opt{
			{name: "state", help: "report domain state"},
			{name: "cpu-total", help: "report domain physical cpu usage"},
			{name: "balloon", help: "report domain balloon statistics"},
			{name: "vcpu", help: "report domain virtual cpu information"},
			{name: "interface", help: "report domain network interface information"},
			{name: "block", help: "report domain block device statistics"},
			{name: "perf", help: "report domain perf event statistics"},
			{name: "iothread", help: "report domain IOThread information"},
			{name: "memory", help: "report domain memory usage"},
			{name: "dirtyrate", help: "report domain dirty rate information"},
			{name: "list-active", help: "list only active domains"},
			{name: "list-inactive", help: "list only inactive domains"},
			{name: "list-persistent", help: "list only persistent domains"},
			{name: "list-transient", help: "list only transient domains"},
			{name: "list-running", help: "list only running domains"},
			{name: "list-paused", help: "list only paused domains"},
			{name: "list-shutoff", help: "list only shutoff domains"},
			{name: "list-other", help: "list only domains in other states"},
			{name: "enforce", help: "enforce requested stats parameters"},
			{name: "domain", kind: optArgv, help: "list of domains to get stats for", positional: true},
		}, run: cmdDomstats},
	{name: "domblkstat", help: "get device block stats for a domain",
		desc: "Get device block stats for a running domain; without a device, the sum of its disks.",
		opts: []opt{
			domainOpt,
			{name: "device", kind: optString, help: "block device", positional: true},
			{name: "human", help: "print a more human readable output"},
		}, run: cmdDomblkstat},
	{name: "domifstat", help: "get network interface stats for a domain",
		desc: "Get network interface stats for a running domain.",
		opts: []opt{
			domainOpt,
			{name: "interface", kind: optString, help: "interface device specified by name or MAC Address", positional: true, required: true},
		}, run: cmdDomifstat},
	{name: "dommemstat", help: "get memory statistics for a domain", desc: "Get memory statistics for a running domain.",
		opts: []opt{domainOpt}, run: cmdDommemstat},
	{name: "nodecpustats", help: "Prints cpu stats of the node.", desc: "Returns cpu stats of the node, in nanoseconds.",
		opts: []opt{{name: "cpu", kind: optInt, help: "prints specified cpu statistics only."}}, run: cmdNodecpustats},
	{name: "nodememstats", help: "Prints memory stats of the node.", desc: "Returns memory stats of the node, in kilobytes.",
		opts: []opt{{name: "cell", kind: optInt, help: "prints specified cell statistics only."}}, run: cmdNodememstats},
	{name: "domcapabilities", help: "domain capabilities", desc: "Returns capabilities of emulator with respect to host and libvirt.",
		opts: []opt{
			{name: "virttype", kind: optString, help: "virtualization type (/domain/@type)"},
			{name: "emulatorbin", kind: optString, help: "path to emulator binary (/domain/devices/emulator)"},
			{name: "arch", kind: optString, help: "domain architecture (/domain/os/type/@arch)"},
			{name: "machine", kind: optString, help: "machine type (/domain/os/type/@machine)"},
		}, run: cmdDomcapabilities},
}

func cmdDomstats(sh *shell, p *parsed) error {
	var groups virt.StatsGroups
	for _, g := range []struct {
		opt   string
		group virt.StatsGroups
	}{
		{"state", virt.StatsState}, {"cpu-total", virt.StatsCPUTotal}, {"balloon", virt.StatsBalloon},
		{"vcpu", virt.StatsVCPU}, {"interface", virt.StatsInterface}, {"block", virt.StatsBlock},
		{"perf", virt.StatsPerf}, {"iothread", virt.StatsIOThread}, {"memory", virt.StatsMemory},
		{"dirtyrate", virt.StatsDirtyRate},
	} {
		if p.flag(g.opt) {
			groups |= g.group
		}
	}
	var flags virt.StatsFlags
	for _, f := range []struct {
		opt  string
		flag virt.StatsFlags
	}{
		{"list-active", virt.StatsActive}, {"list-inactive", virt.StatsInactive},
		{"list-persistent", virt.StatsPersistent}, {"list-transient", virt.StatsTransient},
		{"list-running", virt.StatsRunning}, {"list-paused", virt.StatsPaused},
		{"list-shutoff", virt.StatsShutoff}, {"list-other", virt.StatsOther},
		{"enforce", virt.StatsEnforce},
	} {
		if p.flag(f.opt) {
			flags |= f.flag
		}
	}
	c, err := sh.connect()
	if err != nil {
		return err
	}
	var doms []*client.Domain
	for _, arg := range p.list("domain") {
		d, err := sh.lookupDomain(arg)
		if err != nil {
			return err
		}
		doms = append(doms, d)
	}
	recs, err := c.GetAllDomainStats(sh.ctx, doms, groups, flags)
	if err != nil {
		return err
	}
	for i, r := range recs {
		if i > 0 {
			sh.printf("\n")
		}
		sh.printf("Domain: '%s'\n", r.Domain.Name())
		for _, prm := range r.Params {
			sh.printf("  %s=%s\n", prm.Name, prm.Format())
		}
	}
	return nil
}

func cmdDomblkstat(sh *shell, p *parsed) error {
	d, err := sh.lookupDomain(p.str("domain"))
	if err != nil {
		return err
	}
	device := p.str("device")
	st, err := d.BlockStats(sh.ctx, device)
	if err != nil {
		return failed(err, "Failed to get block stats %s %s", d.Name(), device)
	}
	width := 0
	if p.flag("human") {
		sh.printf("Device: %s\n", device)
		device, width = "", 31
	}
	for _, f := range []struct {
		legacy, human string
		v             int64
	}{
		{"rd_req", "number of read operations:", st.RdReq},
		{"rd_bytes", "number of bytes read:", st.RdBytes},
		{"wr_req", "number of write operations:", st.WrReq},
		{"wr_bytes", "number of bytes written:", st.WrBytes},
		{"errs", "error count:", st.Errs},
	} {
		if f.v < 0 {
			continue
		}
		name := f.legacy
		if width > 0 {
			name = f.human
		}
		sh.printf("%s %-*s %d\n", device, width, name, f.v)
	}
	return nil
}

func cmdDomifstat(sh *shell, p *parsed) error {
	d, err := sh.lookupDomain(p.str("domain"))
	if err != nil {
		return err
	}
	iface := p.str("interface")
	st, err := d.InterfaceStats(sh.ctx, iface)
	if err != nil {
		return failed(err, "Failed to get interface stats %s %s", d.Name(), iface)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"rx_bytes", st.RxBytes}, {"rx_packets", st.RxPackets}, {"rx_errs", st.RxErrs}, {"rx_drop", st.RxDrop},
		{"tx_bytes", st.TxBytes}, {"tx_packets", st.TxPackets}, {"tx_errs", st.TxErrs}, {"tx_drop", st.TxDrop},
	} {
		if f.v >= 0 {
			sh.printf("%s %s %d\n", iface, f.name, f.v)
		}
	}
	return nil
}

func cmdDommemstat(sh *shell, p *parsed) error {
	d, err := sh.lookupDomain(p.str("domain"))
	if err != nil {
		return err
	}
	ms, err := d.MemoryStats(sh.ctx)
	if err != nil {
		return failed(err, "Failed to get memory statistics for domain %s", d.Name())
	}
	for _, m := range ms {
		if m.Tag >= virt.MemorySwapIn && m.Tag <= virt.MemoryHugetlbPgfail {
			sh.printf("%s %d\n", m.Tag, m.Value)
		}
	}
	return nil
}

func cmdNodecpustats(sh *shell, p *parsed) error {
	c, err := sh.connect()
	if err != nil {
		return err
	}
	cpu := virt.NodeCPUStatsAll
	if p.has("cpu") {
		cpu = p.ints["cpu"]
	}
	st, err := c.NodeCPUStats(sh.ctx, cpu)
	if err != nil {
		return failed(err, "Unable to get node cpu stats")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"user:", st.User.Nanoseconds()}, {"system:", st.Kernel.Nanoseconds()},
		{"idle:", st.Idle.Nanoseconds()}, {"iowait:", st.IOWait.Nanoseconds()},
	} {
		sh.printf("%-15s %20d\n", f.name, f.v)
	}
	return nil
}

func cmdNodememstats(sh *shell, p *parsed) error {
	c, err := sh.connect()
	if err != nil {
		return err
	}
	cell := virt.NodeMemoryStatsAll
	if p.has("cell") {
		cell = p.ints["cell"]
	}
	m, err := c.NodeMemoryStats(sh.ctx, cell)
	if err != nil {
		return failed(err, "Unable to get memory stats")
	}
	for _, f := range []struct {
		name string
		v    uint64
	}{
		{"total", m.TotalKiB}, {"free", m.FreeKiB}, {"buffers", m.BuffersKiB}, {"cached", m.CachedKiB},
	} {
		sh.printf("%-7s: %20d KiB\n", f.name, f.v)
	}
	return nil
}

func cmdDomcapabilities(sh *shell, p *parsed) error {
	c, err := sh.connect()
	if err != nil {
		return err
	}
	x, err := c.DomainCapabilities(sh.ctx, p.str("emulatorbin"), p.str("arch"), p.str("machine"), p.str("virttype"))
	if err != nil {
		return failed(err, "failed to get emulator capabilities")
	}
	sh.printf("%s", withNewline(x))
	return nil
}
