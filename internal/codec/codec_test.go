package codec

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
)

type numbers struct {
	A int64
	B uint8
	C float32
	D float64
	E []byte
	F [3]int16
	G *uint64
	H bool
	I []numbers
}

func (numbers) RoutingKey() paas.RoutingKey { return "n" }

type named struct{ Name string }

func (named) RoutingKey() paas.RoutingKey { return "s" }

type stamped struct{ At time.Time }

func (stamped) RoutingKey() paas.RoutingKey { return "t" }

type selfEncoded int

func (selfEncoded) MarshalJSON() ([]byte, error) { return []byte(`1`), nil }

type wrapped struct{ V selfEncoded }

func (wrapped) RoutingKey() paas.RoutingKey { return "w" }

func TestExactTypesAreTheStringFreeOnes(t *testing.T) {
	for _, c := range []struct {
		v     any
		exact bool
	}{
		{numbers{}, true},
		{named{}, false},
		{stamped{}, false}, // time.Time encodes itself
		{wrapped{}, false},
		{map[int]int{}, false},
		{[]any{}, false},
		{json.Number(""), false},
		{struct{ P *named }{}, false},
		{struct{ P **numbers }{}, true},
	} {
		assert.Equal(t, c.exact, exact(reflect.TypeOf(c.v)), "%T", c.v)
	}
}

// An exact type's encoding decodes back to itself: the check that Encode skips for it would
// have passed.
func TestAnExactTypeRoundTrips(t *testing.T) {
	u := uint64(math.MaxUint64)
	for _, p := range []numbers{
		{},
		{A: math.MinInt64, B: 255, C: math.MaxFloat32, D: -0.1, E: []byte{0xff, 0}, F: [3]int16{-1, 0, 1}, G: &u, H: true},
		{C: math.SmallestNonzeroFloat32, D: math.SmallestNonzeroFloat64, E: []byte{}, I: []numbers{{A: 1}}},
		{D: math.Copysign(0, -1), I: []numbers{}},
	} {
		encoded, err := Encode(paas.JSONCodec{}, p)
		require.NoError(t, err)
		var back numbers
		require.NoError(t, json.Unmarshal(encoded, &back))
		again, err := json.Marshal(back)
		require.NoError(t, err)
		assert.Equal(t, string(encoded), string(again))
	}
}

func TestAStringThatIsNotUTF8IsStillRefused(t *testing.T) {
	_, err := Encode(paas.JSONCodec{}, named{Name: "\xff"})
	assert.ErrorIs(t, err, paas.ErrEncodeProgram)
	_, err = Encode(paas.JSONCodec{}, named{Name: "ok"})
	assert.NoError(t, err)
}
