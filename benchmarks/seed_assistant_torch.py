"""The seed's PyTorch assistant (seed 001), as the reference our Keras model is measured against.

`GenshinAssistant.__init__` is the seed's, verbatim; the forward (attention decoder
on the top layer's state) and the greedy loop are written the usual way, since the
seed does not show them. `tests/assistant` counts its parameters; `assistant.py`
times it.
"""

import torch
from torch import nn

from keras_trainer.assistant.tokenizer import EOS_ID, PAD_ID, SOS_ID


class GenshinAssistant(nn.Module):
    """The seed's modules (verbatim `__init__`) and a standard attention-decoder forward."""

    def __init__(self, vocab_size, embedding_dim=128, hidden_dim=256):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.embedding_dropout = nn.Dropout(0.1)
        self.encoder = nn.LSTM(
            embedding_dim,
            hidden_dim,
            num_layers=2,
            batch_first=True,
            bidirectional=True,
            dropout=0.1,
        )
        self.decoder = nn.LSTM(
            embedding_dim + hidden_dim * 2,
            hidden_dim * 2,
            num_layers=2,
            batch_first=True,
            dropout=0.1,
        )
        self.attention = nn.Sequential(
            nn.Linear(hidden_dim * 4, hidden_dim),
            nn.Tanh(),
            nn.Dropout(0.1),
            nn.Linear(hidden_dim, 1),
        )
        self.output_layer = nn.Sequential(
            nn.Linear(hidden_dim * 2, hidden_dim),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(hidden_dim, vocab_size),
        )

    def encode(self, queries):
        outputs, (h, c) = self.encoder(self.embedding_dropout(self.embedding(queries)))
        # (layers*2, B, h) -> (layers, B, 2h): both directions side by side per layer.
        layers = h.shape[0] // 2
        h = h.view(layers, 2, *h.shape[1:]).permute(0, 2, 1, 3).reshape(layers, h.shape[1], -1)
        c = c.view(layers, 2, *c.shape[1:]).permute(0, 2, 1, 3).reshape(layers, c.shape[1], -1)
        return outputs, (h.contiguous(), c.contiguous())

    def decode_step(self, token, outputs, mask, state):
        query = state[0][-1].unsqueeze(1).expand(-1, outputs.shape[1], -1)
        scores = self.attention(torch.cat([query, outputs], -1)).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~mask, -1e9), -1)
        context = torch.bmm(weights.unsqueeze(1), outputs)
        embedded = self.embedding_dropout(self.embedding(token)).unsqueeze(1)
        out, state = self.decoder(torch.cat([embedded, context], -1), state)
        return self.output_layer(out.squeeze(1)), state

    def forward(self, queries, responses_in):
        outputs, state = self.encode(queries)
        mask = queries != PAD_ID
        logits = []
        for t in range(responses_in.shape[1]):
            step_logits, state = self.decode_step(responses_in[:, t], outputs, mask, state)
            logits.append(step_logits)
        return torch.stack(logits, 1)

    @torch.no_grad()
    def greedy(self, queries, length):
        outputs, state = self.encode(queries)
        mask = queries != PAD_ID
        token = torch.full((queries.shape[0],), SOS_ID, dtype=torch.long, device=queries.device)
        result = []
        for _ in range(length):
            logits, state = self.decode_step(token, outputs, mask, state)
            logits[:, [PAD_ID, SOS_ID, EOS_ID]] = -1e9
            token = logits.argmax(-1)
            result.append(token)
        return torch.stack(result, 1).cpu()
