package virtsh

import (
	"os"
)

func cmdToNative(sh *shell, p *parsed) error {
	file := p.str("xml")
	data, err := os.ReadFile(file)
	if err != nil {
		return usagef("Failed to read file '%s': %v", file, unwrapPath(err))
	}
	c, err := sh.connect()
	if err != nil {
		return err
	}
	out, err := c.DomainXMLToNative(sh.ctx, p.str("format"), string(data))
	if err != nil {
		return failed(err, "failed to convert domain XML to %s", p.str("format"))
	}
	sh.printf("%s", withNewline(out))
	return nil
}

func cmdFromNative(sh *shell, p *parsed) error {
	file := p.str("config")
	data, err := os.ReadFile(file)
	if err != nil {
		return usagef("Failed to read file '%s': %v", file, unwrapPath(err))
	}
	config := string(data)
	if p.str("format") == lxcToolsFormat {
		// virtd converts only the text it is sent.
		if config, err = inlineLXC(config, file); err != nil {
			return err
		}
	}
	c, err := sh.connect()
	if err != nil {
		return err
	}
	out, err := c.DomainXMLFromNative(sh.ctx, p.str("format"), config)
	if err != nil {
		return failed(err, "failed to convert %s config to domain XML", p.str("format"))
	}
	sh.printf("%s", withNewline(out))
	return nil
}
