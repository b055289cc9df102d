package discovery

import "strings"

// kind is the form of a name in one of our forward zones.
type kind uint8

const (
	kindNone    kind = iota // not a name we have
	kindApex                // the zone itself
	kindNS                  // ns.<domain>, the name server our SOA names
	kindService             // [<tag>.]<svc>.service, _<svc>._<tag>.service
	kindNode                // <node>.node
	kindAddr                // <hex>.addr
	kindQuery               // <query>.query
)

// parsedName is a query name taken apart. Its strings are slices of the
// query name, in the case the client sent: the store and the comparisons
// fold case, so nothing is lowercased (or allocated) here.
type parsedName struct {
	kind kind
	name string // service, node, hex address or query name
	tag  string // service tag filter, or ""
	dc   string // the datacenter named in the query, or ""
}

// lastLabel splits s at its last dot.
func lastLabel(s string) (head, last string) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return "", s
	}
	return s[:i], s[i+1:]
}

func kindOf(label string) kind {
	switch {
	case strings.EqualFold(label, "service"):
		return kindService
	case strings.EqualFold(label, "node"):
		return kindNode
	case strings.EqualFold(label, "addr"):
		return kindAddr
	case strings.EqualFold(label, "query"):
		return kindQuery
	}
	return kindNone
}

// parse takes apart rest, the labels of a query name before zone z (without
// the final dot). Consul reads names from the right: the type label
// (service, node, addr, query), optionally followed by a datacenter label
// in a domain zone, and what comes before the type names the object.
func (d *Discovery) parse(z *zone, rest string) parsedName {
	if rest == "" {
		return parsedName{kind: kindApex}
	}
	if strings.IndexByte(rest, '\\') >= 0 {
		return parsedName{} // escaped bytes never occur in names we hand out
	}
	head, last := lastLabel(rest)
	k := kindOf(last)
	var dc string
	switch {
	case z.kind == zoneDC:
		dc = z.dc
	case k == kindNone:
		if head == "" && z.name == d.domain && strings.EqualFold(last, "ns") {
			return parsedName{kind: kindNS}
		}
		dc = last
		head, last = lastLabel(head)
		k = kindOf(last)
	}
	if k == kindNone || head == "" {
		return parsedName{}
	}
	p := parsedName{kind: k, dc: dc}
	switch k {
	case kindService:
		first, second := lastLabel(head)
		switch {
		case first == "":
			p.name = second
		case strings.IndexByte(first, '.') >= 0:
			return parsedName{} // at most one tag label
		case len(first) > 1 && len(second) > 1 && first[0] == '_' && second[0] == '_':
			// RFC 2782: _<svc>._<proto or tag>; _tcp and _udp filter nothing.
			p.name, p.tag = first[1:], second[1:]
			if strings.EqualFold(p.tag, "tcp") || strings.EqualFold(p.tag, "udp") {
				p.tag = ""
			}
		default:
			p.tag, p.name = first, second
		}
		if p.name == "" {
			return parsedName{}
		}
	case kindNode, kindQuery:
		// Node names may contain dots: everything before the type label.
		p.name = head
	case kindAddr:
		if strings.IndexByte(head, '.') >= 0 {
			return parsedName{}
		}
		p.name = head
	}
	return p
}
