package adminapi

import (
	"encoding/json"
	"net/http"
	"reflect"

	"github.com/hashicorp/go-bexpr"
)

// ?filter=, Consul's filtering language (github.com/hashicorp/go-bexpr, what
// Consul uses), on list answers: a slice or map of the endpoint's output
// type, whose field names are Consul's selectors (ServiceName, NodeMeta,
// Service.Tags, Service.Port...). A malformed expression, or a selector
// the output type does not have, is a 400 with the parser's message, even
// when the list is empty.

// maxFilterBytes bounds an expression.
const maxFilterBytes = 4096

// requestFilter compiles the request's ?filter=; nil when it has none.
func requestFilter(r *http.Request) (*bexpr.Filter, error) {
	expr := r.URL.Query().Get("filter")
	if expr == "" {
		return nil, nil
	}
	if len(expr) > maxFilterBytes {
		return nil, badRequest("Failed to create boolexpr evaluator for expression %.40q...: longer than %d bytes", expr, maxFilterBytes)
	}
	f, err := bexpr.CreateFilter(expr)
	if err != nil {
		return nil, badRequest("Failed to create boolexpr evaluator for expression %q: %v", expr, err)
	}
	return f, nil
}

// selfFiltered is an answer its endpoint filtered itself, its selectors
// not being its own fields (/v1/catalog/services filters instances and
// answers names).
type selfFiltered struct{ v any }

func (sf selfFiltered) MarshalJSON() ([]byte, error) { return json.Marshal(sf.v) }

// applyFilter keeps the elements of data (a slice or a map) that f
// accepts. data of another kind is returned as it is.
func applyFilter(f *bexpr.Filter, data any) (any, error) {
	if _, ok := data.(selfFiltered); f == nil || data == nil || ok {
		return data, nil
	}
	v := reflect.ValueOf(data)
	if v.Kind() != reflect.Slice && v.Kind() != reflect.Map {
		return data, nil
	}
	// Check the selectors against the element type first: an expression
	// naming no field of it is the caller's mistake even on an empty list.
	elem := v.Type().Elem()
	probe := reflect.Append(reflect.MakeSlice(reflect.SliceOf(elem), 0, 1), zeroFilled(elem, 3))
	if _, err := f.Execute(probe.Interface()); err != nil {
		return nil, badRequest("Failed to apply filter: %v", err)
	}
	out, err := f.Execute(data)
	if err != nil {
		return nil, badRequest("Failed to apply filter: %v", err)
	}
	return out, nil
}

// zeroFilled is a zero value of t whose pointers to structs point at zero
// structs themselves, depth levels down: what a selector such as
// Service.Port walks through on a probe.
func zeroFilled(t reflect.Type, depth int) reflect.Value {
	v := reflect.New(t).Elem()
	if depth == 0 {
		return v
	}
	switch {
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		p := reflect.New(t.Elem())
		p.Elem().Set(zeroFilled(t.Elem(), depth-1))
		return p
	case t.Kind() == reflect.Struct:
		for i := range t.NumField() {
			if f := v.Field(i); f.CanSet() {
				f.Set(zeroFilled(t.Field(i).Type, depth-1))
			}
		}
	}
	return v
}
