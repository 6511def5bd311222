// pyflame_vision/version.h - library version.
#pragma once

namespace pyflame_vision {
/// "MAJOR.MINOR.PATCH" of the library the program is linked against.
const char* version();
}  // namespace pyflame_vision
