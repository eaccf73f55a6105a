// Package codec holds how a program becomes the encoding that identifies its task, shared by
// the service's Submit and by handlertest, which must refuse what Submit refuses.
package codec

import (
	"bytes"
	"fmt"
	"reflect"

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
