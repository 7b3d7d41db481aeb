/* TEMPORARY stand-in for post18's src/workflow/post-restore.c: nothing recorded yet. Removed by the merge of post18. */
#include "util/err.h"
#include "workflow/workflow.h"

int
dd_workflow_post_restore_last(struct dd_repo *repo, const char *profile, struct dd_post_restore_last *out)
{
	(void)repo, (void)profile, (void)out;
	return DD_NOTFOUND;
}

void
dd_workflow_post_restore_last_release(struct dd_post_restore_last *r)
{
	(void)r;
}
