"""Models found by name: `--model foo_bar` imports models/foo_bar_model.py and uses its `FooBarModel`.

To add a model, add one file `models/<name>_model.py` with a subclass of BaseModel whose class
name, lowercased and without underscores, is `<name>model` (see template_model.py).
"""
import importlib
import pathlib

from util.errors import UserError

_MODEL_FILE_SUFFIX = "_model.py"


def available_models():
    """Names of all models in this package (the valid values of --model)."""
    folder = pathlib.Path(__file__).parent
    names = (path.name[: -len(_MODEL_FILE_SUFFIX)] for path in folder.glob("*" + _MODEL_FILE_SUFFIX))
    return sorted(name for name in names if name != "base")


def find_model_using_name(model_name):
    """Import models/<model_name>_model.py and return its BaseModel subclass."""
    if model_name not in available_models():
        raise UserError(f"unknown model {model_name!r}; choose one of {', '.join(available_models())}")
    from .base_model import BaseModel
    module = importlib.import_module(f"models.{model_name}_model")
    wanted = model_name.replace("_", "").lower() + "model"
    for name, cls in vars(module).items():
        if name.lower() == wanted and isinstance(cls, type) and issubclass(cls, BaseModel):
            return cls
    raise UserError(f"models/{model_name}_model.py has no BaseModel subclass named like {wanted!r} "
                    "(case and underscores ignored); name the class after its file")


def get_option_setter(model_name):
    """The model's `modify_commandline_options(parser, is_train)`."""
    return find_model_using_name(model_name).modify_commandline_options


def create_model(opt):
    """Build the model chosen by `opt.model` from the parsed options."""
    return find_model_using_name(opt.model)(opt)
