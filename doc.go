// Package sluice holds the normalized data model that every stage shares:
// the point, the batch a source delivers, and the source position that lets
// a feed resume. It imports nothing of Sluice's own.
package sluice
