"""The rewards of the online RL stages, called as trl calls them: builtin rules on completion texts, the
user's own functions (with what goes wrong named by file, function and row), and the checks preflight runs
on them before any model loads."""

import pytest

from lmforge.config import build_config
from lmforge.data.prompts import SOURCE_COLUMN
from lmforge.data.templates import get_template
from lmforge.errors import ConfigError, RewardError
from lmforge.train.rewards import answers, build_rewards, builtin_problems, required_columns


def rewards_of(*names, template="chatml", **keys):
    cfg = build_config({"reward_funcs": list(names), **keys})
    return {reward.name: reward for reward in build_rewards(cfg.rl, get_template(template))}


def call(reward, completions, **columns):
    count = len(completions)
    return reward.func(prompts=["p"] * count, completions=completions, completion_ids=[[1]] * count,
                       **{SOURCE_COLUMN: [f"data.json:row {i + 1}" for i in range(count)]}, **columns)


@pytest.mark.parametrize("verifier", [True, False], ids=["math-verify", "numeric-fallback"])
def test_math_accuracy_reads_the_final_answer(monkeypatch, verifier):
    if verifier and not answers.HAS_MATH_VERIFY:
        pytest.skip("math-verify is not installed (pip install lmforge[rl])")
    monkeypatch.setattr(answers, "HAS_MATH_VERIFY", verifier)
    accuracy = rewards_of("accuracy")["accuracy"]
    completions = ["<think>2 + 2 is 4, or 5?</think> The answer is \\boxed{\\frac{1}{2}}", "So we get 1,234 apples.",
                   "I think 7", "50%", "no reference here"]
    references = ["0.5", "#### 1234", "8", "\\frac{1}{2}", None]
    assert call(accuracy, completions, answer=references) == [1.0, 1.0, 0.0, 1.0, None]


def test_math_verify_knows_symbolic_equality():
    if not answers.HAS_MATH_VERIFY:
        pytest.skip("math-verify is not installed (pip install lmforge[rl])")
    assert answers.math_equal("\\boxed{2\\sqrt{2}}", "\\sqrt{8}")
    assert not answers.math_equal("\\boxed{2\\sqrt{3}}", "\\sqrt{8}")


def test_exact_and_normalized_accuracy_and_the_answer_column():
    rewards = rewards_of("accuracy_exact", "accuracy_normalized", reward_answer_column="label")
    completions = ["Paris", " The Paris. ", "paris"]
    labels = ["Paris"] * 3
    assert call(rewards["accuracy_exact"], completions, label=labels) == [1.0, 0.0, 0.0]
    assert call(rewards["accuracy_normalized"], completions, label=labels) == [1.0, 1.0, 1.0]
    assert rewards["accuracy_exact"].columns == ("label",)


def test_format_rewards():
    rewards = rewards_of("format_think", "format_json")
    texts = ["<think>\nsteps\n</think>\n\n{\"a\": 1}", "<think></think> {\"a\": 1}", "```json\n[1, 2]\n```",
             "{\"a\": 1} <think>late</think>", "<think>open only"]
    assert call(rewards["format_think"], texts) == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert call(rewards["format_json"], texts) == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_format_think_after_a_generation_prompt_that_opens_the_thought():
    reward = rewards_of("format_think", template="deepseekr1")["format_think"]  # its prompt ends with <think>
    assert call(reward, ["steps\n</think>\n\n42", "<think>steps</think>42", "42"]) == [1.0, 0.0, 0.0]


def test_length_and_repetition():
    rewards = rewards_of("length", "repetition", reward_length_target=4)
    texts = ["one two three four", "one two", "a b c d e f g h", "", "go go go go go go"]
    assert call(rewards["length"], texts) == [1.0, 0.5, 0.0, 0.0, 0.5]
    repetition = call(rewards["repetition"], texts)
    assert repetition[:4] == [0.0, 0.0, 0.0, 0.0] and repetition[4] == pytest.approx(-0.75)


def test_builtin_problems_are_found_without_loading_anything():
    cfg = build_config({"reward_funcs": "accurcy,length", "reward_weights": "1,2,3"})
    problems = " ".join(builtin_problems(cfg.rl))
    assert "unknown reward `accurcy`; did you mean `accuracy`" in problems
    assert "needs `reward_length_target`" in problems
    assert "`reward_weights` has 3 values for 2 rewards" in problems


USER_REWARDS = '''
def contains_word(completions, word, **kwargs):
    return [float(w in text) for text, w in zip(completions, word)]

def fragile(completions, prompt_source, **kwargs):
    return [1.0 / (len(text) - 3) for text in completions]

def no_kwargs(completions):
    return [0.0] * len(completions)

def wrong_count(completions, **kwargs):
    return [1.0]

def not_a_number(completions, **kwargs):
    return ["high"] * len(completions)

NOT_CALLABLE = 3
'''


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "my_rewards.py"
    path.write_text(USER_REWARDS)
    return path


def user_reward(path, name):
    cfg = build_config({"reward_funcs": f"{path}:{name}"})
    return build_rewards(cfg.rl, get_template("chatml"))[0]


def test_user_reward_is_called_with_the_dataset_columns(user_file):
    reward = user_reward(user_file, "contains_word")
    assert reward.name == "contains_word" and reward.columns == ("word",)
    assert call(reward, ["yes sir", "no"], word=["yes", "yes"]) == [1.0, 0.0]
    cfg = build_config({"reward_funcs": [f"{user_file}:contains_word", "accuracy"]})
    assert required_columns(cfg.rl) == {"word": [f"{user_file}:contains_word"], "answer": ["builtin reward `accuracy`"]}


def test_user_reward_that_raises_names_file_function_and_row(user_file):
    reward = user_reward(user_file, "fragile")
    with pytest.raises(RewardError) as err:
        call(reward, ["a longer one", "abc", "fine text"])
    message = str(err.value)
    assert str(user_file) in message and "`fragile`" in message
    assert "ZeroDivisionError" in message and "on row data.json:row 2" in message and "'abc'" in message


@pytest.mark.parametrize(("name", "expected"), [
    ("missing", "has no `missing`; its functions: contains_word, fragile, no_kwargs, not_a_number, wrong_count"),
    ("NOT_CALLABLE", "`NOT_CALLABLE` in"),
    ("no_kwargs", "add `**kwargs` to its parameters (completions)"),
])
def test_user_reward_that_does_not_fit_fails_at_load(user_file, name, expected):
    with pytest.raises(RewardError) as err:
        user_reward(user_file, name)
    assert expected in str(err.value)


def test_user_reward_answers_are_checked(user_file):
    with pytest.raises(RewardError, match="returned 1 values for 2 completions"):
        call(user_reward(user_file, "wrong_count"), ["a", "b"])
    with pytest.raises(RewardError, match=r"returned 'high' for row data\.json:row 1"):
        call(user_reward(user_file, "not_a_number"), ["a"])


def test_user_reward_file_errors(tmp_path):
    with pytest.raises(RewardError, match=r"file not found: .*nowhere\.py"):
        user_reward(tmp_path / "nowhere.py", "f")
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_module_anywhere\n")
    with pytest.raises(RewardError, match=r"importing .*broken\.py failed: ModuleNotFoundError"):
        user_reward(broken, "f")


def test_two_rewards_with_one_name_are_refused(user_file):
    cfg = build_config({"reward_funcs": [f"{user_file}:contains_word", f"{user_file}:contains_word"]})
    with pytest.raises(RewardError, match="share a name"):
        build_rewards(cfg.rl, get_template("chatml"))


def test_an_unknown_builtin_at_build_time_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown reward `lenght`"):
        rewards_of("lenght")
