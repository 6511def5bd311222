// pyflame_vision/pyflame_vision.h - umbrella header of the C++ library.
#pragma once

#include "pyflame_vision/checked.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/graph.h"
#include "pyflame_vision/models/efficientnet.h"
#include "pyflame_vision/models/model.h"
#include "pyflame_vision/models/registry.h"
#include "pyflame_vision/models/resnet.h"
#include "pyflame_vision/nn/blocks.h"
#include "pyflame_vision/nn/layers.h"
#include "pyflame_vision/nn/module.h"
#include "pyflame_vision/tensor_spec.h"
#include "pyflame_vision/transforms.h"
#include "pyflame_vision/version.h"
