package fenceproto

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

func xmlEscape(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func getoptMixed(p *Param) string {
	var s string
	if p.Short != "" {
		s = "-" + p.Short + ", "
	}
	s += "--" + p.long()
	if p.typ() != TypeBoolean {
		s += "=[" + p.metavar() + "]"
	}
	return s
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// writeMetadata prints the agent's metadata in fence-agents' XML form.
func writeMetadata(w io.Writer, a *Agent, ps *paramSet) {
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\" ?>\n")
	fmt.Fprintf(&b, "<resource-agent name=\"%s\" shortdesc=\"%s\" >\n", xmlEscape(a.Name), xmlEscape(a.ShortDesc))
	fmt.Fprintf(&b, "<longdesc>%s</longdesc>\n", xmlEscape(a.LongDesc))
	fmt.Fprintf(&b, "<vendor-url>%s</vendor-url>\n", xmlEscape(a.VendorURL))
	b.WriteString("<parameters>\n")
	type entry struct {
		name string
		p    *Param
		dep  bool
	}
	var entries []entry
	for _, p := range ps.list {
		entries = append(entries, entry{p.Name, p, false})
		for _, al := range p.Aliases {
			entries = append(entries, entry{al, p, true})
		}
	}
	for _, e := range entries {
		p := e.p
		attrs := fmt.Sprintf("name=\"%s\" unique=\"0\" required=\"%s\"", xmlEscape(e.name), b01(p.Required))
		if e.dep {
			attrs += " deprecated=\"1\""
		} else if len(p.Aliases) > 0 {
			attrs += fmt.Sprintf(" obsoletes=\"%s\"", xmlEscape(p.Aliases[0]))
		}
		fmt.Fprintf(&b, "\t<parameter %s>\n", attrs)
		fmt.Fprintf(&b, "\t\t<getopt mixed=\"%s\" />\n", xmlEscape(getoptMixed(p)))
		def := ""
		if p.Default != "" {
			def = fmt.Sprintf(" default=\"%s\"", xmlEscape(p.Default))
		}
		if p.typ() == TypeSelect {
			fmt.Fprintf(&b, "\t\t<content type=\"select\"%s >\n", def)
			for _, c := range p.Choices {
				fmt.Fprintf(&b, "\t\t\t<option value=\"%s\" />\n", xmlEscape(c))
			}
			b.WriteString("\t\t</content>\n")
		} else {
			fmt.Fprintf(&b, "\t\t<content type=\"%s\"%s />\n", p.typ(), def)
		}
		fmt.Fprintf(&b, "\t\t<shortdesc lang=\"en\">%s</shortdesc>\n", xmlEscape(p.Desc))
		b.WriteString("\t</parameter>\n")
	}
	b.WriteString("</parameters>\n<actions>\n")
	for _, act := range actions(a) {
		switch {
		case act == "on" && a.Unfence:
			b.WriteString("\t<action name=\"on\" on_target=\"1\" automatic=\"1\"/>\n")
		case act == "on":
			b.WriteString("\t<action name=\"on\" automatic=\"0\"/>\n")
		default:
			fmt.Fprintf(&b, "\t<action name=\"%s\" />\n", act)
		}
	}
	b.WriteString("</actions>\n</resource-agent>\n")
	io.WriteString(w, b.String())
}

func actions(a *Agent) []string {
	acts := []string{"on", "off"}
	if !a.Fabric {
		acts = append(acts, "reboot")
	}
	acts = append(acts, "status", "list", "list-status", "monitor", "metadata", "manpage", "validate-all")
	if a.Fabric {
		acts = append(acts, "enable", "disable")
	}
	return acts
}

// roff escapes text for a man page line.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// writeManpage prints a roff man page generated from the metadata.
func writeManpage(w io.Writer, a *Agent, ps *paramSet) {
	var b strings.Builder
	// SOURCE_DATE_EPOCH keeps the generated man pages reproducible.
	t := time.Now()
	if sec, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		t = time.Unix(sec, 0)
	}
	date := t.UTC().Format("2006-01-02")
	fmt.Fprintf(&b, ".TH %s 8 %s \"Concord\" \"Fence agents\"\n", strings.ToUpper(a.Name), date)
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", roff(a.Name), roff(a.ShortDesc))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B %s\n[\\fIOPTIONS\\fR]\n.br\n.B %s\n< \\fIname=value lines on stdin\\fR\n", roff(a.Name), roff(a.Name))
	fmt.Fprintf(&b, ".SH DESCRIPTION\n%s\n", roff(a.LongDesc))
	b.WriteString(".P\nWith no arguments the agent reads one \\fIname\\fR=\\fIvalue\\fR per line on standard input (the ClusterLabs fence-agent protocol, as Pacemaker runs it); otherwise it takes the command-line options below.\n")
	if a.VendorURL != "" {
		fmt.Fprintf(&b, ".P\nVendor URL: %s\n", roff(a.VendorURL))
	}
	b.WriteString(".SH PARAMETERS\n")
	for _, p := range ps.list {
		fmt.Fprintf(&b, ".TP\n.B %s\n", roff(getoptMixed(p)))
		desc := p.Desc
		if p.Required {
			desc += ". This parameter is always required"
		}
		if p.Default != "" {
			desc += fmt.Sprintf(" (Default Value: %s)", p.Default)
		}
		if len(p.Choices) > 0 {
			desc += fmt.Sprintf(" (one of: %s)", strings.Join(p.Choices, ", "))
		}
		fmt.Fprintf(&b, "%s\n", roff(desc))
	}
	b.WriteString(".SH ACTIONS\n")
	for _, act := range actions(a) {
		fmt.Fprintf(&b, ".TP\n\\fB%s\\fR\n%s\n", roff(act), roff(actionDesc(a, act)))
	}
	b.WriteString(".SH STDIN PARAMETERS\n")
	names := []string{}
	for _, p := range ps.list {
		names = append(names, p.Name)
		names = append(names, p.Aliases...)
	}
	sort.Strings(names)
	for _, n := range names {
		canon, _ := ps.resolve(n)
		p := ps.byName[canon]
		extra := ""
		if n != canon {
			extra = fmt.Sprintf(" Obsolete name of %s.", canon)
		}
		fmt.Fprintf(&b, ".TP\n.B %s\n%s%s\n", roff(n), roff(p.Desc), roff(extra))
	}
	b.WriteString(".SH EXIT STATUS\n0 success; 1 failure; 2 bad arguments, or status found the target off; 3 login denied; 4 connection lost; 5 timed out; 6 timed out waiting to power on; 7 timed out waiting to power off; 8 unable to obtain the plug status; 10 password missing; 11 invalid privileges.\n")
	io.WriteString(w, b.String())
}

func actionDesc(a *Agent, act string) string {
	switch act {
	case "on":
		if a.Unfence {
			return "Power on or unfence the target (run on the target itself at start-up)."
		}
		return "Power on the target."
	case "off":
		return "Power off or fence the target."
	case "reboot":
		return "Reboot the target: off, then on (or a hardware cycle with method=cycle)."
	case "status":
		return "Report the power status: exit 0 when on, 2 when off."
	case "list":
		return "List the plugs the device controls, one \"plug,alias\" per line."
	case "list-status":
		return "List the plugs with their status, \"plug,alias,ON|OFF|UNKNOWN\"."
	case "monitor":
		return "Check that the device is reachable."
	case "metadata":
		return "Print the XML metadata."
	case "manpage":
		return "Print this manual page."
	case "validate-all":
		return "Check the parameters without contacting the device; exit 1, naming what is missing or wrong."
	case "enable":
		return "Alias of on."
	case "disable":
		return "Alias of off."
	}
	return ""
}

// usage prints -h help.
func usage(w io.Writer, a *Agent, ps *paramSet) {
	fmt.Fprintf(w, "Usage:\n\t%s [options]\nOptions:\n", a.Name)
	for _, p := range ps.list {
		fmt.Fprintf(w, "   %-38s %s\n", getoptMixed(p), p.Desc)
	}
}
