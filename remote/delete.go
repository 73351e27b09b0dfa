package remote

import "context"

// DeleteError is one key a batch delete could not remove.
type DeleteError struct {
	Key string
	Err error
}

// Delete removes keys from bucket in batches of 1,000. Keys that could not
// be deleted are returned with their errors; err is for the request as a
// whole (every key in failed batches is then reported as failed too).
func (c *Client) Delete(ctx context.Context, bucket string, keys []string) ([]DeleteError, error) {
	failed, err := c.deleteIf(ctx, bucket, deleteItems(keys), false)
	c.observe(Transfer{Op: OpDelete, Keys: len(keys), Failed: failed, Err: err})
	return failed, err
}

// deleteItems are keys to delete whatever they hold.
func deleteItems(keys []string) []DeleteItem {
	items := make([]DeleteItem, len(keys))
	for i, k := range keys {
		items[i].Key = k
	}
	return items
}
