"""The understanding conversation format of Video-LaVIT as a Jinja chat template.

The original formats prompts with a two-separator ("v1") conversation: ``{system} USER: {message} ASSISTANT:``,
user turns end with ``" "`` and assistant turns with ``" \\n </s>"``, where ``\\n`` is a literal backslash followed by
``n`` (two characters, not a newline) - the released SFT model learned to finish answers with it. A visual input is
written as its placeholder followed by a real newline (``"<video>\n" + question``).

Rendering rules of :data:`VIDEO_LAVIT_CHAT_TEMPLATE`:
- an optional leading ``system`` message replaces the default system prompt;
- then messages must alternate ``user`` / ``assistant``, starting with ``user``;
- content is a string, or a list of items rendered in order: ``{"type": "image"}`` -> ``"<image>\n"``,
  ``{"type": "video"}`` -> ``"<video>\n"``, ``{"type": "text", "text": t}`` -> ``t``;
- ``add_generation_prompt=True`` appends ``"ASSISTANT:"``.
"""

DEFAULT_SYSTEM_PROMPT = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)

# Literal backslash + "n": the answer terminator of the SFT model (its stop string).
ANSWER_STOP_STRING = "\\n"

# Jinja string literals unescape backslashes, so '\\n' below renders as backslash + n and '\n' as a newline.
VIDEO_LAVIT_CHAT_TEMPLATE = (
    r"""{%- if messages and messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set system_prompt = messages[0]['content'] -%}
    {%- else -%}
        {%- set system_prompt = messages[0]['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('') -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set system_prompt = '"""
    + DEFAULT_SYSTEM_PROMPT.replace("'", "\\'")
    + r"""' -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{{- system_prompt + ' ' -}}
{%- for message in loop_messages -%}
    {%- if message['role'] not in ['user', 'assistant'] -%}
        {{- raise_exception('Video-LaVIT chat messages must have role user or assistant (system only first), got ' + message['role']) -}}
    {%- endif -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{- raise_exception('Video-LaVIT chat messages must alternate user/assistant, starting with user') -}}
    {%- endif -%}
    {{- 'USER: ' if message['role'] == 'user' else 'ASSISTANT: ' -}}
    {%- if message['content'] is string -%}
        {{- message['content'] -}}
    {%- else -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{- '<image>\n' -}}
            {%- elif item['type'] == 'video' -%}
                {{- '<video>\n' -}}
            {%- elif item['type'] == 'text' -%}
                {{- item['text'] -}}
            {%- else -%}
                {{- raise_exception('Video-LaVIT chat content items must be image, video or text, got ' + item['type']) -}}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{- ' ' if message['role'] == 'user' else ' \\n </s>' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- 'ASSISTANT:' -}}
{%- endif -%}"""
)

__all__ = ["ANSWER_STOP_STRING", "DEFAULT_SYSTEM_PROMPT", "VIDEO_LAVIT_CHAT_TEMPLATE"]
