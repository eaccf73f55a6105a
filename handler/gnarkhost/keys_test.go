package gnarkhost_test

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/handler/gnarkhost"
)

func TestAProofVerifiesAndATamperedOneDoesNot(t *testing.T) {
	dir := t.TempDir()
	for _, scheme := range schemes {
		t.Run(string(scheme), func(t *testing.T) {
			k := setup(t, dir, chainCircuit("chain", scheme))
			host := &gnarkhost.Host[uint64]{Keys: k, Assign: assignChain}
			p, err := host.Prove(context.Background(), 7)
			require.NoError(t, err)
			require.NoError(t, k.Verify(p))

			public, err := gnarkhost.PublicWitness(p)
			require.NoError(t, err)
			assert.Equal(t, chainOut(7, rounds).String(), publicValue(t, public))

			for i := range []int{0, len(p.Receipt) / 2, len(p.Receipt) - 1} {
				tampered := p
				tampered.Receipt = bytes.Clone(p.Receipt)
				tampered.Receipt[[]int{0, len(p.Receipt) / 2, len(p.Receipt) - 1}[i]] ^= 0x01
				assert.ErrorIs(t, k.Verify(tampered), gnarkhost.ErrInvalidProof, "byte %d flipped", i)
			}

			other, err := host.Prove(context.Background(), 8)
			require.NoError(t, err)
			wrongInput := paas.Proof{Receipt: p.Receipt, PublicValues: other.PublicValues}
			assert.ErrorIs(t, k.Verify(wrongInput), gnarkhost.ErrInvalidProof)
		})
	}
}

func TestAnAssignmentThatIsNoWitnessFailsPermanently(t *testing.T) {
	k := setup(t, t.TempDir(), chainCircuit("chain", gnarkhost.Groth16))
	p, err := k.Prove(&chain{X: 7, Out: 8, N: rounds})
	assert.ErrorIs(t, err, gnarkhost.ErrWitness)
	assert.True(t, isPermanent(err), "%v", err)
	assert.Empty(t, p.Receipt)

	_, err = k.Prove(&chain{X: 7, N: rounds}) // Out unset
	assert.ErrorIs(t, err, gnarkhost.ErrWitness)
}

func TestTheVerifyingKeyTravelsAndExportsToSolidity(t *testing.T) {
	dir := t.TempDir()
	for _, scheme := range schemes {
		t.Run(string(scheme), func(t *testing.T) {
			k := setup(t, dir, chainCircuit("chain", scheme))
			p, err := k.Prove(&chain{X: 3, Out: chainOut(3, rounds), N: rounds})
			require.NoError(t, err)

			var buf bytes.Buffer
			_, err = k.VerifyingKey().WriteTo(&buf)
			require.NoError(t, err)
			vk, err := gnarkhost.ReadVerifyingKey(scheme, &buf)
			require.NoError(t, err)
			require.NoError(t, vk.Verify(p))

			var sol bytes.Buffer
			require.NoError(t, vk.ExportSolidity(&sol))
			contract := sol.String()
			assert.True(t, strings.Contains(contract, "pragma solidity"), "no pragma")
			assert.True(t, regexp.MustCompile(`function (verifyProof|Verify)\(`).MatchString(contract), "no verifying function")
			calldata, err := vk.SolidityProof(p)
			require.NoError(t, err)
			assert.NotEmpty(t, calldata)
		})
	}
}
