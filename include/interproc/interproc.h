// interproc.h
//
// Everything public in one include.

#ifndef INTERPROC_INTERPROC_H_
#define INTERPROC_INTERPROC_H_

#include "interproc/anonymous_pipe.h"
#include "interproc/channel.h"
#include "interproc/child_process.h"
#include "interproc/copy_data.h"
#include "interproc/deadline.h"
#include "interproc/event.h"
#include "interproc/handle.h"
#include "interproc/mailslot.h"
#include "interproc/mutex.h"
#include "interproc/name.h"
#include "interproc/named_pipe.h"
#include "interproc/open_mode.h"
#include "interproc/permissions.h"
#include "interproc/process.h"
#include "interproc/registry.h"
#include "interproc/request_server.h"
#include "interproc/result.h"
#include "interproc/semaphore.h"
#include "interproc/shared_memory.h"
#include "interproc/wait.h"

#endif  // INTERPROC_INTERPROC_H_
