package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/hcl"
)

// Service definition files, as Consul's agent reads them and `consul
// services register` takes them: JSON (.json) or HCL (.hcl) holding a
// "service" object or a "services" list. Keys are matched as Consul's
// configuration matches them: in any case, with or without underscores
// ("enable_tag_override" is EnableTagOverride; a check's "args" its
// ScriptArgs). A key the registration does not have is an error, as it is
// to Consul.

// servicesFromFiles reads every service definition in files.
func servicesFromFiles(files []string) ([]*api.AgentServiceRegistration, error) {
	var out []*api.AgentServiceRegistration
	for _, f := range files {
		svcs, err := servicesFromFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, svcs...)
	}
	return out, nil
}

func servicesFromFile(path string) ([]*api.AgentServiceRegistration, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc any
	switch ext := filepath.Ext(path); ext {
	case ".json":
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // a port stays an integer through the round trip below
		if err := dec.Decode(&doc); err != nil {
			return nil, fmt.Errorf("%s: decoding JSON: %w", path, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%s: decoding JSON: unexpected data after the definition", path)
		}
	case ".hcl":
		if err := hcl.Decode(&doc, string(raw)); err != nil {
			return nil, fmt.Errorf("%s: decoding HCL: %w", path, err)
		}
	default:
		return nil, fmt.Errorf("%s: unknown format: a service definition file is .json or .hcl", path)
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: want an object with \"service\" or \"services\"", path)
	}
	var defs []any
	for key, v := range top {
		switch normalizeKey(key) {
		case "service":
			list, isList := asList(v)
			if !isList {
				list = []any{v}
			}
			defs = append(defs, list...)
		case "services":
			list, isList := asList(v)
			if !isList {
				return nil, fmt.Errorf("%s: \"services\" must be a list", path)
			}
			defs = append(defs, list...)
		default:
			return nil, fmt.Errorf("%s: invalid config key %s: a service definition file holds \"service\" or \"services\"", path, key)
		}
	}
	if len(defs) == 0 {
		return nil, fmt.Errorf("%s: no service definition in it", path)
	}
	regType := reflect.TypeFor[api.AgentServiceRegistration]()
	out := make([]*api.AgentServiceRegistration, 0, len(defs))
	for _, def := range defs {
		norm, err := normalizeFor(regType, def, "service")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		b, err := json.Marshal(norm)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		var reg api.AgentServiceRegistration
		if err := json.Unmarshal(b, &reg); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, &reg)
	}
	return out, nil
}

// normalizeKey is a key as Consul's configuration compares it: lower
// case, without underscores or dashes.
func normalizeKey(k string) string {
	return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(k))
}

// asList returns v's elements when it is a list: JSON decodes to []any,
// HCL decodes blocks to []map[string]any.
func asList(v any) ([]any, bool) {
	switch l := v.(type) {
	case []any:
		return l, true
	case []map[string]any:
		out := make([]any, len(l))
		for i, m := range l {
			out[i] = m
		}
		return out, true
	}
	return nil, false
}

// normalizeFor rewrites v, decoded from a file, into the JSON shape of t:
// object keys are renamed to t's field names, and a block HCL wraps in a
// list of one is unwrapped where t wants an object. path names v in
// errors.
func normalizeFor(t reflect.Type, v any, path string) (any, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		if list, ok := asList(v); ok {
			if len(list) != 1 {
				return nil, fmt.Errorf("%s: want one object, got a list of %d", path, len(list))
			}
			v = list[0]
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: want an object, got %s", path, describe(v))
		}
		fields := structFields(t)
		out := make(map[string]any, len(obj))
		for key, val := range obj {
			f, ok := fields[normalizeKey(key)]
			if !ok {
				return nil, fmt.Errorf("invalid config key %s.%s", path, key)
			}
			norm, err := normalizeFor(f.Type, val, path+"."+key)
			if err != nil {
				return nil, err
			}
			out[jsonName(f)] = norm
		}
		return out, nil
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: want an object, got %s", path, describe(v))
		}
		out := make(map[string]any, len(obj))
		for key, val := range obj { // a map's keys are data (meta keys): kept as written
			norm, err := normalizeFor(t.Elem(), val, path+"."+key)
			if err != nil {
				return nil, err
			}
			out[key] = norm
		}
		return out, nil
	case reflect.Slice:
		list, ok := asList(v)
		if !ok {
			return v, nil // the JSON decoding below says what is wrong with it
		}
		out := make([]any, len(list))
		for i, el := range list {
			norm, err := normalizeFor(t.Elem(), el, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = norm
		}
		return out, nil
	}
	return v, nil
}

// structFields maps the normalized names of t's fields, by their Go name
// and by their JSON name, to the fields.
func structFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || jsonName(f) == "-" {
			continue
		}
		out[normalizeKey(f.Name)] = f
		out[normalizeKey(jsonName(f))] = f
	}
	return out
}

// jsonName is the key encoding/json uses for f.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%T", v)
}
