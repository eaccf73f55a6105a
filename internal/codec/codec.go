// Package codec holds how a program becomes the encoding that identifies its task, shared by
// the service's Submit and by handlertest, which must refuse what Submit refuses.
package codec

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	"github.com/zkpaas/paas"
)

// Encode returns the encoding of program by c, which is its identity. It refuses, with
// paas.ErrEncodeProgram, a program whose encoding does not decode back to the same encoding:
// two such programs could share an encoding and so a TaskID (encoding/json writes every
// invalid UTF-8 byte of a string as U+FFFD, so "\xff" and "\xfe" both encode to "\ufffd"),
// and the handler would be given a program that was never submitted. An encoding that
// decodes back to itself is the one program the handler gets.
func Encode(c paas.Codec, program paas.ProgramType) ([]byte, error) {
	encoded, err := c.Marshal(program)
	if err != nil {
		return nil, fmt.Errorf("%w: %T: %w", paas.ErrEncodeProgram, program, err)
	}
	if _, isJSON := c.(paas.JSONCodec); isJSON && exact(reflect.TypeOf(program)) {
		return encoded, nil
	}
	decoded := reflect.New(reflect.TypeOf(program))
	if err := c.Unmarshal(encoded, decoded.Interface()); err != nil {
		return nil, fmt.Errorf("%w: %T: its encoding does not decode: %w", paas.ErrEncodeProgram, program, err)
	}
	again, err := c.Marshal(decoded.Elem().Interface())
	if err != nil {
		return nil, fmt.Errorf("%w: %T: its encoding, decoded, does not encode: %w", paas.ErrEncodeProgram, program, err)
	}
	if !bytes.Equal(encoded, again) {
		return nil, fmt.Errorf("%w: %T: its encoding does not decode back to itself (a string that is not valid UTF-8?): %q decodes and encodes as %q",
			paas.ErrEncodeProgram, program, encoded, again)
	}
	return encoded, nil
}

// exact reports whether encoding/json encodes every value of t so that it decodes back to
// itself, which makes the round trip of Encode needless: t holds no string (whose invalid
// UTF-8 is replaced), no interface or map with string keys (strings again), and nothing that
// encodes itself (a Marshaler may do anything). Numbers, booleans, byte slices (base64),
// and arrays, slices, pointers and structs of them, are exact. The answer is kept per type.
func exact(t reflect.Type) bool {
	if v, ok := exactTypes.Load(t); ok {
		return v.(bool)
	}
	ok := exactType(t, map[reflect.Type]bool{})
	exactTypes.Store(t, ok)
	return ok
}

var exactTypes sync.Map // reflect.Type → bool

var (
	marshaler     = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

func exactType(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return true // a recursive type: the first visit decides
	}
	seen[t] = true
	pt := reflect.PointerTo(t)
	if t.Implements(marshaler) || t.Implements(textMarshaler) || pt.Implements(marshaler) || pt.Implements(textMarshaler) {
		return false
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	case reflect.Array, reflect.Slice, reflect.Pointer:
		return exactType(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); (f.IsExported() || f.Anonymous) && !exactType(f.Type, seen) {
				return false
			}
		}
		return true
	}
	return false // strings, interfaces, maps, and what encoding/json refuses
}
