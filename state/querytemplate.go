package state

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Prepared query templates: a template's Service strings hold
// interpolations, expanded for each name executed. The syntax is the part
// of HashiCorp's HIL that Consul documents for templates: ${name.full} (the
// name executed), ${name.prefix} (the template's name), ${name.suffix}
// (what follows it), ${agent.segment} (the agent's network segment, always
// the default "" in beacon, as in Consul's community edition) and
// ${match(N)} (group N of the template's Regexp matched against the name;
// "" when it does not match or has no such group); $${ is a literal ${.

// templateVars are the values a rendering interpolates.
type templateVars struct {
	full, prefix, suffix, segment string
	// matches are the Regexp's groups in the name, nil when it did not
	// match (or there is no Regexp).
	matches []string
}

// render returns a copy of template q for the name executed, every string
// of its Service interpolated, without the empty tags when the template
// says so. Its errors are ErrInvalidPreparedQuery's: a rendering that fails
// for the template's own name is refused when the template is written.
func (q *PreparedQuery) render(name string) (*PreparedQuery, error) {
	vars := templateVars{full: name, prefix: q.Name, suffix: name}
	if n := len(q.Name); len(name) >= n && strings.EqualFold(name[:n], q.Name) {
		vars.suffix = name[n:]
	}
	if pattern := q.Template.Regexp; pattern != "" {
		if len(pattern) > MaxPreparedQueryRegexpBytes {
			return nil, invalidQuery("Bad Regexp: %d bytes, at most %d are allowed", len(pattern), MaxPreparedQueryRegexpBytes)
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			return nil, invalidQuery("Bad Regexp: %v", err)
		}
		vars.matches = re.FindStringSubmatch(name)
	}
	out := *q
	svc := &out.Service
	expand := func(field string, s *string) error {
		v, err := interpolate(*s, &vars)
		if err != nil {
			return invalidQuery("Bad format '%s' in Service.%s: %v", *s, field, err)
		}
		*s = v
		return nil
	}
	expandAll := func(field string, list []string) ([]string, error) {
		list = slices.Clone(list)
		for i := range list {
			if err := expand(fmt.Sprintf("%s[%d]", field, i), &list[i]); err != nil {
				return nil, err
			}
		}
		return list, nil
	}
	expandValues := func(field string, m map[string]string) (map[string]string, error) {
		m = maps.Clone(m)
		for k, v := range m {
			if err := expand(field+"."+k, &v); err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	}
	var err error
	for _, f := range []struct {
		name string
		s    *string
	}{{"Service", &svc.Service}, {"Near", &svc.Near}, {"SamenessGroup", &svc.SamenessGroup}, {"Peer", &svc.Peer}} {
		if err := expand(f.name, f.s); err != nil {
			return nil, err
		}
	}
	if svc.Tags, err = expandAll("Tags", svc.Tags); err != nil {
		return nil, err
	}
	if svc.IgnoreCheckIDs, err = expandAll("IgnoreCheckIDs", svc.IgnoreCheckIDs); err != nil {
		return nil, err
	}
	if svc.Failover.Datacenters, err = expandAll("Failover.Datacenters", svc.Failover.Datacenters); err != nil {
		return nil, err
	}
	svc.Failover.Targets = slices.Clone(svc.Failover.Targets)
	for i := range svc.Failover.Targets {
		if err := expand(fmt.Sprintf("Failover.Targets[%d].Datacenter", i), &svc.Failover.Targets[i].Datacenter); err != nil {
			return nil, err
		}
	}
	if svc.NodeMeta, err = expandValues("NodeMeta", svc.NodeMeta); err != nil {
		return nil, err
	}
	if svc.ServiceMeta, err = expandValues("ServiceMeta", svc.ServiceMeta); err != nil {
		return nil, err
	}
	if q.Template.RemoveEmptyTags {
		svc.Tags = slices.DeleteFunc(svc.Tags, func(t string) bool { return t == "" })
	}
	return &out, nil
}

// interpolate expands the ${...} of s.
func interpolate(s string, vars *templateVars) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var sb strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			sb.WriteString(s)
			return sb.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			// $${ is a literal ${.
			sb.WriteString(s[:i-1])
			sb.WriteString("${")
			s = s[i+2:]
			continue
		}
		sb.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ at %q", s[i:])
		}
		v, err := vars.eval(strings.TrimSpace(s[i+2 : i+end]))
		if err != nil {
			return "", err
		}
		sb.WriteString(v)
		s = s[i+end+1:]
	}
}

// eval is the value of one ${expr}.
func (v *templateVars) eval(expr string) (string, error) {
	switch expr {
	case "name.full":
		return v.full, nil
	case "name.prefix":
		return v.prefix, nil
	case "name.suffix":
		return v.suffix, nil
	case "agent.segment":
		return v.segment, nil
	}
	if arg, ok := strings.CutPrefix(expr, "match"); ok {
		arg = strings.TrimSpace(arg)
		if inner, ok := strings.CutPrefix(arg, "("); ok {
			if inner, ok = strings.CutSuffix(inner, ")"); ok {
				n, err := strconv.Atoi(strings.TrimSpace(inner))
				if err != nil {
					return "", fmt.Errorf("match takes a whole number, not %q", strings.TrimSpace(inner))
				}
				if n < 0 || n >= len(v.matches) {
					return "", nil
				}
				return v.matches[n], nil
			}
		}
	}
	return "", fmt.Errorf("unknown variable or function %q: a template may use name.full, name.prefix, name.suffix, agent.segment and match(N)", expr)
}
