// Package paas is Prover-as-a-Service: an embeddable library that runs zero-knowledge proof
// generation tasks for a prover node.
//
// This package holds the vocabulary shared by the others: TaskID, TaskState, TaskStatus,
// Config, the TaskStore interface, and the errors. The service itself lives in package service,
// handlers in package handler, stores under store/.
package paas
