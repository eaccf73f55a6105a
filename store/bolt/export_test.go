package bolt

// Exported for the tests of package bolt_test, which damage the file through bbolt directly.
var (
	BucketTasks      = bucketTasks
	BucketUnfinished = bucketUnfinished
	BucketKeyLog     = bucketKeyLog
	BucketProofs     = bucketProofs
	EncodeRecord     = encodeRecord
)
