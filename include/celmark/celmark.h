/* celmark — umbrella header: include this to use libcelmark. */
#ifndef CELMARK_H
#define CELMARK_H

#include "celmark/common.h"
#include "celmark/image.h"
#include "celmark/key.h"
#include "celmark/ledger.h"
#include "celmark/stamp.h"
#include "celmark/verify.h"
#include "celmark/video.h"
#include "celmark/sequence.h"

#endif
