// Interoperability peer for pocketkms: the official AWS Encryption SDK for
// JavaScript encrypts or decrypts one message with raw AES keyrings.
//
//   node esdk.js encrypt <suite> <frameLength> <contextJSON> <in> <out> <ns:name:keyhex>...
//   node esdk.js decrypt <contextJSON> <in> <out> <ns:name:keyhex>...
//
// encrypt makes the first keyring the generator and the rest children; the
// context is the encryption context. decrypt opens with any of the keyrings
// and checks that every pair of the context is in the message.
'use strict'
const fs = require('fs')
const {
  buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier,
  MultiKeyringNode, AlgorithmSuiteIdentifier,
} = require('@aws-crypto/client-node')

const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)

function keyring (spec) {
  const [keyNamespace, keyName, hex] = spec.split(':')
  return new RawAesKeyringNode({
    keyNamespace,
    keyName,
    unencryptedMasterKey: new Uint8Array(Buffer.from(hex, 'hex')), // an isolated buffer, as the SDK requires
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  })
}

const suites = {
  '0478': AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY,
  '0578': AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
}

async function main (argv) {
  const mode = argv[0]
  if (mode === 'encrypt') {
    const [, suite, frameLength, ec, input, output, ...keys] = argv
    const [generator, ...children] = keys.map(keyring)
    const kr = new MultiKeyringNode({ generator, children })
    const { result } = await encrypt(kr, fs.readFileSync(input), {
      suiteId: suites[suite], frameLength: Number(frameLength), encryptionContext: JSON.parse(ec),
    })
    fs.writeFileSync(output, result)
    return
  }
  if (mode === 'decrypt') {
    const [, ec, input, output, ...keys] = argv
    const kr = new MultiKeyringNode({ children: keys.map(keyring) })
    const { plaintext, messageHeader } = await decrypt(kr, fs.readFileSync(input))
    for (const [k, v] of Object.entries(JSON.parse(ec))) {
      if (messageHeader.encryptionContext[k] !== v) throw new Error('encryption context pair missing: ' + k)
    }
    fs.writeFileSync(output, plaintext)
    return
  }
  throw new Error('usage: esdk.js encrypt|decrypt ...')
}

main(process.argv.slice(2)).catch((e) => { console.error(e.message); process.exit(1) })
