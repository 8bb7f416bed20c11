"""A fix shared by the tokenizer configs for remote-code export."""


def plain_auto_map(config_dict: dict) -> dict:
    """Rewrite `auto_map` entries saved as `[slow, fast]` pairs into plain `"module.Class"` strings.

    transformers' `custom_object_save` files every class whose name contains "Tokenizer" (our visual and motion
    tokenizer *models*) as a text tokenizer pair, which `AutoConfig` / `AutoModel` then cannot load with
    `trust_remote_code`. A genuine `AutoTokenizer` entry keeps its pair.
    """
    auto_map = config_dict.get("auto_map")
    if isinstance(auto_map, dict):
        config_dict["auto_map"] = {
            key: value[0] if isinstance(value, (list, tuple)) and key != "AutoTokenizer" else value
            for key, value in auto_map.items()
        }
    return config_dict
