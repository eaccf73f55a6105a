package service

import (
	"fmt"
	"slices"

	"github.com/zkpaas/paas"
	"github.com/zkpaas/paas/internal/codec"
)

// encode returns the encoding of program by the service's Codec, which is its identity (see
// codec.Encode).
func (s *ProverService) encode(program paas.ProgramType) ([]byte, error) {
	return codec.Encode(s.cfg.Codec, program)
}

// runnable reports why this service cannot run rec, if it cannot: the checks of Submit, for
// records that come from the store.
func (s *ProverService) runnable(rec paas.TaskRecord) error {
	if _, ok := s.handlers[rec.RoutingKey]; !ok {
		return fmt.Errorf("%w %q", paas.ErrNoHandler, rec.RoutingKey)
	}
	workers, ok := s.cfg.Workers[rec.Backend]
	if !ok {
		return fmt.Errorf("%w: %q", paas.ErrUnknownBackend, rec.Backend)
	}
	if rec.Weight < 1 || rec.Weight > workers {
		return fmt.Errorf("%w: weight %d, backend %q has capacity %d", paas.ErrInvalidWeight, rec.Weight, rec.Backend, workers)
	}
	return nil
}

// newRecord returns the record of a new task of program on backend, or why it cannot be one
// (err). optErr says what is wrong with the options, which matters only if the task is new.
func (s *ProverService) newRecord(program paas.ProgramType, backend paas.Backend, opts []paas.SubmitOption) (rec paas.TaskRecord, optErr, err error) {
	if program == nil {
		return paas.TaskRecord{}, nil, fmt.Errorf("%w: nil program", paas.ErrEncodeProgram)
	}
	o := submitOptions(opts)
	if o.TimeoutSet && o.Timeout < 0 {
		optErr = fmt.Errorf("%w: timeout %s, want >= 0", paas.ErrInvalidOption, o.Timeout)
	}
	deps := make([]paas.TaskID, 0, len(o.DependsOn))
	for _, dep := range o.DependsOn {
		if dep.IsZero() && optErr == nil {
			optErr = fmt.Errorf("%w: the zero task id", paas.ErrUnknownDependency)
		}
		if !slices.Contains(deps, dep) {
			deps = append(deps, dep)
		}
	}
	encoded, err := s.encode(program)
	if err != nil {
		return paas.TaskRecord{}, nil, err
	}
	now := s.cfg.Clock.Now()
	rk := program.RoutingKey()
	rec = paas.TaskRecord{
		ID:         paas.NewTaskID(),
		Key:        paas.KeyOf(rk, encoded, backend),
		RoutingKey: rk,
		Backend:    backend,
		Program:    encoded,
		Weight:     paas.WeightOf(program),
		Priority:   o.Priority,
		Timeout:    o.Timeout,
		NoTimeout:  o.TimeoutSet && o.Timeout == 0,
		State:      paas.Pending,
		Version:    1,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	if len(deps) > 0 {
		rec.DependsOn = deps
	}
	return rec, optErr, s.runnable(rec)
}

// submitOptions applies opts. Without options it allocates nothing: the options an option
// sets move to the heap, the option being unknown here.
func submitOptions(opts []paas.SubmitOption) paas.SubmitOptions {
	if len(opts) == 0 {
		return paas.SubmitOptions{}
	}
	o := new(paas.SubmitOptions)
	for _, opt := range opts {
		opt(o)
	}
	return *o
}
