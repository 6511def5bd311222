// pyflame_vision/pyflame_vision.h - umbrella header of the C++ library.
//
// One include for everything public:
//
//   #include <pyflame_vision/pyflame_vision.h>
//   namespace pfv = pyflame_vision;
//   auto model = pfv::models::resnet50(/*num_classes=*/1000);   // lazy: shapes only
//   pfv::load_weights(*model, "resnet50.safetensors");            // or model->init_weights(0)
//   std::vector<float> x(1 * 3 * 224 * 224);                      // float32 [N, C, H, W]
//   pfv::Tensor logits = model->forward(x.data(), {1, 3, 224, 224});  // [1, 1000]
//
// Link with the CMake target pyflame_vision::pyflame_vision
// (find_package(pyflame_vision CONFIG REQUIRED)). Every function reports
// errors by throwing a subclass of pyflame_vision::Error (error.h); none
// aborts the process on bad input.
#pragma once

#include "pyflame_vision/bench.h"
#include "pyflame_vision/cancel.h"
#include "pyflame_vision/checked.h"
#include "pyflame_vision/cpu.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/graph.h"
#include "pyflame_vision/io.h"
#include "pyflame_vision/models/efficientnet.h"
#include "pyflame_vision/models/model.h"
#include "pyflame_vision/models/registry.h"
#include "pyflame_vision/models/resnet.h"
#include "pyflame_vision/models/weights.h"
#include "pyflame_vision/nn/blocks.h"
#include "pyflame_vision/nn/layers.h"
#include "pyflame_vision/nn/module.h"
#include "pyflame_vision/tensor.h"
#include "pyflame_vision/tensor_spec.h"
#include "pyflame_vision/transforms.h"
#include "pyflame_vision/version.h"
