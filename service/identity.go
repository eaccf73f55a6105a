package service

import (
	"bytes"
	"fmt"
	"reflect"

	"github.com/zkpaas/paas"
)

// encode returns the encoding of program by the service's Codec, which is its identity. It
// refuses, with paas.ErrEncodeProgram, a program whose encoding does not decode back to the
// same encoding: two such programs could share an encoding and so a TaskID (encoding/json
// writes every invalid UTF-8 byte of a string as U+FFFD, so "\xff" and "\xfe" both encode to
// "\ufffd"), and the handler would be given a program that was never submitted. An encoding
// that decodes back to itself is the one program the handler gets.
func (s *ProverService) encode(program paas.ProgramType) ([]byte, error) {
	codec := s.cfg.Codec
	encoded, err := codec.Marshal(program)
	if err != nil {
		return nil, fmt.Errorf("%w: %T: %w", paas.ErrEncodeProgram, program, err)
	}
	decoded := reflect.New(reflect.TypeOf(program))
	if err := codec.Unmarshal(encoded, decoded.Interface()); err != nil {
		return nil, fmt.Errorf("%w: %T: its encoding does not decode: %w", paas.ErrEncodeProgram, program, err)
	}
	again, err := codec.Marshal(decoded.Elem().Interface())
	if err != nil {
		return nil, fmt.Errorf("%w: %T: its encoding, decoded, does not encode: %w", paas.ErrEncodeProgram, program, err)
	}
	if !bytes.Equal(encoded, again) {
		return nil, fmt.Errorf("%w: %T: its encoding does not decode back to itself (a string that is not valid UTF-8?): %q decodes and encodes as %q",
			paas.ErrEncodeProgram, program, encoded, again)
	}
	return encoded, nil
}
