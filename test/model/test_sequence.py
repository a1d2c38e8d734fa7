"""Tokenizer and multimodal sequence assembly (no model weights involved)."""
import torch

from hyperseg_ros.command import Command
from hyperseg_ros.model import prompts
from hyperseg_ros.model.config import HyperSegConfig
from hyperseg_ros.model.multimodal_sequence import (
    FINE_GRAINED,
    MASK,
    REGION,
    TEXT,
    VISUAL,
    build_token_batch,
    splice_embeddings,
)
from hyperseg_ros.model.tokenizer import build_word_tokenizer, load_tokenizer, seg_token_id


def test_unknown_words_become_unk_and_case_and_punctuation_are_ignored():
    tok = build_word_tokenizer(["the red circle"])
    ids = tok("Uhm, PLEASE find the Red circle!!", add_special_tokens=False)["input_ids"]
    words = tok.convert_ids_to_tokens(ids)
    # "!" is split off like a word and, unseen, is [UNK] too
    assert words == ["[UNK]", ",", "please", "[UNK]", "the", "red", "circle", "[UNK]", "[UNK]"]
    assert tok.convert_tokens_to_ids("[SEG]") == seg_token_id(tok) == 2
    assert tok.pad_token_id == 0 and tok.unk_token_id == 1
    # [SEG] and <|endoftext|> are never split
    assert tok("red [SEG]<|endoftext|>", add_special_tokens=False)["input_ids"][-2:] == [2, 3]


def test_template_words_are_in_the_vocabulary(tmp_path):
    tok = build_word_tokenizer([])
    vocab = tok.get_vocab()
    assert prompts.TEMPLATE_WORDS <= set(vocab)
    ids = tok(prompts.SYSTEM + prompts.USER + prompts.ASSISTANT, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids
    tok.save_pretrained(tmp_path)
    again = load_tokenizer(str(tmp_path))
    assert again("the red circle", add_special_tokens=False)["input_ids"] == \
        tok("the red circle", add_special_tokens=False)["input_ids"]


def test_token_batch_layout_per_task():
    tok = build_word_tokenizer(["red circle", "blue star"])
    cfg = HyperSegConfig.from_size("tiny", vocab_size=len(tok))
    visual, fine, masks = cfg.vision_grid ** 2, cfg.num_fine_grained_tokens, cfg.num_mask_tokens

    refer = build_token_batch(tok, cfg, [Command("referring", "the red circle"), Command("referring", "star")])
    assert refer.input_ids.shape[0] == 2 and refer.prompt_mask.shape == (2, 1)
    for b in range(2):
        kind = refer.kind[b][refer.attention_mask[b].bool()]
        assert (kind == VISUAL).sum() == visual and (kind == FINE_GRAINED).sum() == fine
        assert (kind == MASK).sum() == masks and (kind == REGION).sum() == 0
        # order: visual before fine-grained before the prompt before the mask tokens
        first = {k: int(torch.nonzero(kind == k)[0]) for k in (VISUAL, FINE_GRAINED, MASK)}
        prompt_pos = torch.nonzero(refer.prompt_index[b] == 0).flatten()
        assert first[VISUAL] < first[FINE_GRAINED] < int(prompt_pos[0]) < first[MASK]
        # the referring span ends with [SEG] and is contiguous
        assert refer.input_ids[b, prompt_pos[-1]] == seg_token_id(tok)
        assert (prompt_pos.diff() == 1).all()
    # "the red circle" + [SEG] = 4 pooled positions, "star" + [SEG] = 2; right padding
    assert (refer.prompt_index[0] == 0).sum() == 4 and (refer.prompt_index[1] == 0).sum() == 2
    assert refer.attention_mask[1, -1] == 0 or refer.attention_mask[0, -1] == 0

    cats = build_token_batch(tok, cfg, [Command("open_vocabulary", categories=("red circle", "star", "blue")),
                                        Command("open_vocabulary", categories=("star",))])
    assert cats.prompt_mask.tolist() == [[True, True, True], [True, False, False]]
    assert [(cats.prompt_index[0] == c).sum().item() for c in range(3)] == [3, 2, 2]  # name tokens + [SEG]

    regions = build_token_batch(tok, cfg, [Command("visual_prompt", boxes=((0, 0, 4, 4),), points=((3, 3),))])
    assert (regions.kind == REGION).sum() == 2
    assert regions.prompt_index[regions.kind == REGION].tolist() == [0, 1]
    assert regions.input_ids[regions.kind == TEXT].ne(tok.unk_token_id).all()


def test_splice_puts_each_embedding_in_its_slots():
    tok = build_word_tokenizer(["red"])
    cfg = HyperSegConfig.from_size("tiny", vocab_size=len(tok))
    tokens = build_token_batch(tok, cfg, [Command("visual_prompt", points=((1, 1),)),
                                          Command("visual_prompt", boxes=((0, 0, 2, 2),), points=((1, 1),))])
    batch, length = tokens.input_ids.shape
    width = 5
    text = torch.zeros(batch, length, width)
    visual = torch.randn(batch, cfg.vision_grid ** 2, width)
    fine = torch.randn(batch, cfg.num_fine_grained_tokens, width)
    mask_tokens = torch.randn(cfg.num_mask_tokens, width)
    regions = torch.randn(batch, 2, width)
    out = splice_embeddings(tokens, text, visual, fine, mask_tokens, regions)
    for b in range(batch):
        assert torch.equal(out[b][tokens.kind[b] == VISUAL], visual[b])
        assert torch.equal(out[b][tokens.kind[b] == FINE_GRAINED], fine[b])
        assert torch.equal(out[b][tokens.kind[b] == MASK], mask_tokens)
    assert torch.equal(out[0][tokens.kind[0] == REGION], regions[0, :1])
    assert torch.equal(out[1][tokens.kind[1] == REGION], regions[1])
    assert out[tokens.kind == TEXT].abs().sum() == 0
